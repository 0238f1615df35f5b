"""The training progress bar: what it shows, when it is drawn, and that it changes nothing
about training."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from planted import WINDOW, planted_panel, small_model
from rich.console import Console

from training.data.batches import DaySampler, DevicePanel, FoldScaler
from training.progress import EpochProgress, progress_enabled
from training.train import Trainer


def test_the_bar_shows_steps_running_loss_and_rate():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160, color_system=None)
    losses = [2.0, 1.0, 0.5]
    # interval 60 s: the loss is read at the first step and (always) at the last one
    with EpochProgress("epoch 3/7", len(losses), True, console=console, interval=60) as bar:
        total = torch.tensor(0.0)
        for i, loss in enumerate(losses):
            total = total + loss * 10
            bar.step(10, total, 10 * (i + 1))
    text = out.getvalue()
    assert "epoch 3/7" in text and "3/3" in text and "samples/s" in text
    assert f"loss {np.mean(losses):.4f}" in text  # the epoch's mean so far, at the end
    assert f"loss {np.mean(losses[:2]):.4f}" not in text  # not read in between


def test_progress_modes(monkeypatch):
    assert progress_enabled(True) and not progress_enabled(False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert not progress_enabled("auto")
    with pytest.raises(ValueError, match="train.progress must be auto, true or false"):
        progress_enabled("yes")


def test_training_with_the_bar_equals_training_without(capsys):
    panel, graphs = planted_panel()
    dp = DevicePanel(panel, FoldScaler.fit(panel, range(40)), graphs, "cpu", WINDOW)
    results = []
    for progress in (False, True):
        trainer = Trainer(small_model(), dp, {"precision": "fp32", "lr": 1e-3,
                                              "weight_decay": 0.0, "seed": 0, "grad_clip": 0.8,
                                              "progress": progress}, {})
        sampler = DaySampler(panel, range(WINDOW - 1, 30), max_stocks=64, shuffle=True)
        row = trainer.train_epoch(sampler, 0, "epoch 1/1")
        results.append((row["train/total_loss"], trainer.model.state_dict()))
    (plain, plain_w), (barred, barred_w) = results
    assert barred == plain
    assert all(torch.equal(plain_w[k], barred_w[k]) for k in plain_w)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and f"loss {plain:.4f}" in err
