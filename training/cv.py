"""Walk-forward folds over trade dates with an embargo before validation and test.

Day indices refer to the panel's sorted trade dates. The last ``test_days`` form the
test block; the ``n_folds`` validation blocks of ``val_days`` each lie before it,
consecutive and in time order. Fold ``k`` trains on every day from the first up to
``embargo`` trading days before its validation block (an expanding window; with
``max_train_days`` a rolling one: only the last ``max_train_days`` of those days), so a
training label looking ``h <= embargo`` days ahead never reaches a validation or test
day. The same embargo separates the last validation block from the test block.
"""

from __future__ import annotations

from dataclasses import dataclass


class FoldError(ValueError):
    """The panel is too short for the requested folds (message gives the numbers)."""


@dataclass(frozen=True)
class Fold:
    """Day-index ranges ``[start, stop)`` of one fold's train and validation parts."""

    index: int
    train: range
    val: range

    def describe(self, days) -> dict:
        """Dates of the fold as ISO strings (for logs and MLflow params)."""
        return {"fold": self.index,
                "train": f"{days[self.train.start]}..{days[self.train.stop - 1]}",
                "val": f"{days[self.val.start]}..{days[self.val.stop - 1]}"}


@dataclass(frozen=True)
class Split:
    folds: list[Fold]
    test: range


def walk_forward_folds(n_days: int, n_folds: int, val_days: int, test_days: int = 0,
                       embargo: int = 20, min_train_days: int = 40,
                       max_horizon: int = 10, max_train_days: int | None = None) -> Split:
    """Folds over ``n_days`` trade dates (see module doc).

    Raises ``FoldError`` when ``embargo < max_horizon`` (labels would leak), when the
    first fold would train on fewer than ``min_train_days`` days, or when
    ``max_train_days`` is given and below ``min_train_days``.
    """
    if embargo < max_horizon:
        raise FoldError(f"embargo {embargo} < longest label horizon {max_horizon}: "
                        "training labels would reach into validation")
    if n_folds < 1 or val_days < 1:
        raise FoldError(f"need n_folds >= 1 and val_days >= 1, got {n_folds}, {val_days}")
    if max_train_days is not None and max_train_days < min_train_days:
        raise FoldError(f"max_train_days {max_train_days} < min_train_days {min_train_days}")
    test = range(n_days - test_days, n_days) if test_days else range(n_days, n_days)
    val_end = n_days - test_days - (embargo if test_days else 0)
    first_val = val_end - n_folds * val_days
    if first_val - embargo < min_train_days:
        raise FoldError(
            f"{n_days} trade dates are too few for {n_folds} folds x {val_days} validation "
            f"days, {test_days} test days and a {embargo}-day embargo: the first fold would "
            f"train on {max(first_val - embargo, 0)} days (< {min_train_days})")
    folds = []
    for k in range(n_folds):
        v0 = first_val + k * val_days
        stop = v0 - embargo
        start = 0 if max_train_days is None else max(0, stop - max_train_days)
        folds.append(Fold(k, range(start, stop), range(v0, v0 + val_days)))
    return Split(folds, test)
