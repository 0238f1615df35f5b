"""Walk-forward folds: embargo and look-ahead properties."""

from __future__ import annotations

import pytest

from training.cv import FoldError, walk_forward_folds

MAX_H = 10


@pytest.mark.parametrize("n_days,n_folds,val_days,test_days,embargo", [
    (300, 3, 40, 0, 20), (750, 5, 60, 60, 20), (200, 1, 30, 20, 25), (120, 2, 10, 10, 10)])
def test_no_training_label_horizon_reaches_validation_or_test(n_days, n_folds, val_days,
                                                              test_days, embargo):
    split = walk_forward_folds(n_days, n_folds, val_days, test_days, embargo, min_train_days=20)
    assert len(split.folds) == n_folds
    for fold in split.folds:
        # the label of the last training day ends MAX_H sessions later: before validation
        assert max(fold.train) + MAX_H < min(fold.val)
        assert min(fold.val) - max(fold.train) - 1 == embargo
        assert not set(fold.train) & set(fold.val)
        if len(split.test):
            assert max(fold.val) + MAX_H < min(split.test)
            assert max(fold.train) + MAX_H < min(split.test)
    if len(split.test):
        assert min(split.test) - max(split.folds[-1].val) - 1 == embargo
        assert max(split.test) == n_days - 1
    vals = [d for f in split.folds for d in f.val]
    assert vals == sorted(set(vals)), "validation blocks are consecutive and disjoint"
    starts = [f.train.stop for f in split.folds]
    assert starts == sorted(starts) and all(f.train.start == 0 for f in split.folds)


def test_embargo_shorter_than_label_horizon_is_rejected():
    with pytest.raises(FoldError, match="embargo 5 < longest label horizon 10"):
        walk_forward_folds(300, 2, 30, embargo=5)


def test_too_few_days_names_the_numbers():
    with pytest.raises(FoldError, match="100 trade dates .* 3 folds x 30 validation"):
        walk_forward_folds(100, 3, 30, embargo=20, min_train_days=40)


def test_rolling_window_trains_each_fold_on_its_last_days_before_the_embargo():
    expanding = walk_forward_folds(300, 3, 40, embargo=20, min_train_days=20)
    rolling = walk_forward_folds(300, 3, 40, embargo=20, min_train_days=20, max_train_days=100)
    for old, new in zip(expanding.folds, rolling.folds, strict=True):
        assert new.val == old.val and new.train.stop == old.train.stop
        assert len(new.train) == min(100, len(old.train))
        assert max(new.train) + MAX_H < min(new.val)
    assert [f.train.start for f in rolling.folds] == [60, 100, 140]
    with pytest.raises(FoldError, match="max_train_days 10 < min_train_days 20"):
        walk_forward_folds(300, 3, 40, embargo=20, min_train_days=20, max_train_days=10)
