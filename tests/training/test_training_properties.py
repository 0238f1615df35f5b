"""What training must guarantee: validation data never moves a weight, and the model
learns the planted signal (it beats the same model trained on shuffled labels)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tr_lake import SMALL_RUN

from training.config import compose
from training.data.batches import DaySampler
from training.experiment import Data, device_panel, fit_fold, load_data, samplers
from training.inference import label_frame, predict_days
from training.metrics import evaluate_predictions


@pytest.fixture(scope="module")
def data(gold_lake) -> Data:
    return load_data(compose(SMALL_RUN, phase="gat"), None, None, gold_lake["root"])


def _fit(cfg, data, train_days, val_days):
    dp = device_panel(cfg, data, train_days)
    tr, va = samplers(cfg, data.panel, train_days, val_days)
    model, res = fit_fold(cfg, dp, tr, va)
    return model, res, dp, va


def test_permuting_validation_data_leaves_trained_weights_unchanged(data):
    cfg = compose([*SMALL_RUN, "train.epochs=2", "train.patience=5"], phase="augmentation")
    fold = data.split.folds[0]
    train, val = list(fold.train)[-40:], list(fold.val)
    _, res, _, _ = _fit(cfg, data, train, val)
    shuffled = copy.copy(data)
    panel = copy.deepcopy(data.panel)
    rng = np.random.default_rng(5)
    for d in val:  # scramble validation days: stocks' features and labels, independently
        panel.features[d] = panel.features[d][rng.permutation(panel.features.shape[1])] * 3.0
        perm = rng.permutation(panel.labels.shape[1])
        panel.labels[d], panel.label_ok[d] = panel.labels[d][perm], panel.label_ok[d][perm]
    shuffled.panel = panel
    _, res2, _, _ = _fit(cfg, shuffled, train, val)
    assert res.history[0]["val/total_loss"] != res2.history[0]["val/total_loss"]
    for name, value in res.final_state.items():
        torch.testing.assert_close(value, res2.final_state[name], rtol=0, atol=0, msg=name)


def _val_rank_ic(model, dp, va: DaySampler, h: int = 1) -> float:
    pred = predict_days(model, dp, va)
    _, summary, _ = evaluate_predictions(pred, label_frame(dp, va.days), "m")
    return summary[h]["rank_ic"]


def test_model_beats_shuffled_label_control(data):
    cfg = compose([*SMALL_RUN, "train.epochs=3", "train.lr=3e-3"], phase="gat")
    fold = data.split.folds[0]
    train = list(fold.train)[-70:]
    model, _, dp, va = _fit(cfg, data, train, fold.val)
    real = _val_rank_ic(model, dp, va)
    control = copy.copy(data)
    panel = copy.deepcopy(data.panel)
    rng = np.random.default_rng(9)
    for d in train:  # labels shuffled across stocks within each training day
        perm = rng.permutation(panel.labels.shape[1])
        panel.labels[d], panel.label_ok[d] = panel.labels[d][perm], panel.label_ok[d][perm]
    control.panel = panel
    model_c, _, dp_c, va_c = _fit(cfg, control, train, fold.val)
    shuffled = _val_rank_ic(model_c, dp_c, va_c)
    assert real > 0.05 and real > shuffled + 0.04, (real, shuffled)
