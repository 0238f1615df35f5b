"""The CUDA path (skipped without a GPU): the same model gives the same forecasts on CPU
and CUDA, and bf16-autocast training through the production loop, eager and compiled
(``train.compile``), learns a planted signal.

Self-contained (no lake, no conftest fixtures), so it also runs on a bare GPU machine with
``pytest --noconftest tests/training/test_cuda.py``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from training.data.batches import DaySampler, DevicePanel, FoldScaler
from training.data.graph import PeerGraphs
from training.data.panel import Panel
from training.train import Trainer, build_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DAYS, STOCKS, FEATURES, WINDOW = 60, 96, 8, 10


def _planted_panel(seed: int = 0) -> tuple[Panel, PeerGraphs]:
    """Labels of every horizon = feature 0 of the day + noise; a ring graph of peers."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((DAYS, STOCKS, FEATURES), dtype=np.float32)
    y = np.repeat(x[:, :, :1], 5, axis=2) + 0.5 * rng.standard_normal((DAYS, STOCKS, 5))
    day0 = dt.date(2025, 1, 6)
    panel = Panel([day0 + dt.timedelta(days=i) for i in range(DAYS)],
                  [f"{1000 + i}" for i in range(STOCKS)],
                  [f"f{i}_cs_z" for i in range(FEATURES)], x, np.ones_like(x, bool),
                  y.astype(np.float32), np.ones(y.shape, bool), np.ones((DAYS, STOCKS), bool))
    dst = np.arange(STOCKS)
    src = (dst + 1) % STOCKS
    graphs = PeerGraphs([panel.days[0]], [(src, dst, np.full(STOCKS, 0.5, np.float32))],
                        np.zeros(DAYS, dtype=int), STOCKS)
    return panel, graphs


def _model():
    torch.manual_seed(0)
    return build_model({"hidden": 32, "heads": 4, "dropout": 0.0}, FEATURES, WINDOW)


def test_cuda_forward_matches_cpu():
    panel, graphs = _planted_panel()
    scaler = FoldScaler.fit(panel, range(DAYS))
    model = _model().eval()
    outputs = {}
    for device in ("cpu", "cuda"):
        dp = DevicePanel(panel, scaler, graphs, device, WINDOW)
        batch = dp.batch(DAYS - 1, np.arange(STOCKS))
        with torch.no_grad():
            out = model.to(device)(batch.x, batch.edge_index, batch.edge_attr)
        outputs[device] = (out.point.cpu(), out.quantiles.cpu())
    for cpu, cuda in zip(outputs["cpu"], outputs["cuda"], strict=True):
        assert cuda.dtype == torch.float32
        torch.testing.assert_close(cuda, cpu, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("compile_mode", ["none", "default"])
def test_bf16_training_on_cuda_learns_the_planted_signal(compile_mode):
    panel, graphs = _planted_panel()
    dp = DevicePanel(panel, FoldScaler.fit(panel, range(40)), graphs, "cuda", WINDOW)
    trainer = Trainer(_model(), dp, {"precision": "bf16", "lr": 3e-3, "weight_decay": 0.0,
                                     "seed": 0, "grad_clip": 0.8, "epochs": 8, "patience": 8,
                                     "compile": compile_mode}, {})
    assert trainer.amp == torch.bfloat16
    train = DaySampler(panel, range(WINDOW - 1, 40), max_stocks=64, shuffle=True)
    val = DaySampler(panel, range(45, DAYS), max_stocks=64)
    before = trainer.evaluate(val)["val/total_loss"]
    result = trainer.fit(train, val)
    losses = [row["val/total_loss"] for row in result.history]
    assert all(np.isfinite(losses))
    assert min(losses) < 0.8 * before
    assert all(t.device.type == "cuda" and torch.isfinite(t).all()
               for t in result.best_state.values() if t.is_floating_point())
    batch = dp.batch(DAYS - 1, np.arange(STOCKS))
    with torch.no_grad():
        point = trainer.model.eval()(batch.x, batch.edge_index, batch.edge_attr).point
    corr = np.corrcoef(point[:, 0].float().cpu().numpy(), batch.y[:, 0].cpu().numpy())[0, 1]
    assert corr > 0.5
