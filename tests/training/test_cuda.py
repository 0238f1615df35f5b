"""The CUDA path (skipped without a GPU): the same model gives the same forecasts on CPU
and CUDA, bf16-autocast training through the production loop, eager and compiled
(``train.compile``), learns a planted signal, and a padded day batch (what the compiled
step takes) is built without a host sync.

Self-contained (no lake, no conftest fixtures), so it also runs on a bare GPU machine with
``pytest --noconftest tests/training/test_cuda.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from planted import DAYS, STOCKS, WINDOW, planted_panel, small_model

from training.data.batches import DaySampler, DevicePanel, FoldScaler
from training.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_forward_matches_cpu():
    panel, graphs = planted_panel()
    scaler = FoldScaler.fit(panel, range(DAYS))
    model = small_model().eval()
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


@pytest.mark.parametrize("compile_mode", ["none", "default", "reduce-overhead"])
def test_bf16_training_on_cuda_learns_the_planted_signal(compile_mode):
    panel, graphs = planted_panel()
    dp = DevicePanel(panel, FoldScaler.fit(panel, range(40)), graphs, "cuda", WINDOW)
    trainer = Trainer(small_model(), dp, {"precision": "bf16", "lr": 3e-3, "weight_decay": 0.0,
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


def test_a_padded_day_batch_is_built_without_a_host_sync():
    panel, graphs = planted_panel()
    dp = DevicePanel(panel, FoldScaler.fit(panel, range(40)), graphs, "cuda", WINDOW)
    stocks = np.arange(0, STOCKS, 2)  # half the stocks: half the ring's edges have no peer
    dp.batch(DAYS - 1, stocks, pad_to=len(stocks) + 2)  # the snapshot reaches the GPU once
    torch.cuda.set_sync_debug_mode("error")  # any synchronizing CUDA call raises
    try:
        batch = dp.batch(DAYS - 2, stocks, pad_to=len(stocks) + 2)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert batch.edge_index.shape == (2, (len(stocks) + 2) * graphs.max_in_degree)
    assert batch.x.shape[0] == len(stocks) + 2


def test_augmented_training_draws_its_noise_on_the_gpu():
    panel, graphs = planted_panel()
    dp = DevicePanel(panel, FoldScaler.fit(panel, range(40)), graphs, "cuda", WINDOW)
    trainer = Trainer(small_model(), dp, {"precision": "bf16", "lr": 1e-3, "weight_decay": 0.0,
                                          "seed": 0, "grad_clip": 0.8, "augment": {
                                              "noise_std": 0.1, "feature_dropout": 0.1}}, {})
    assert trainer.gen.device.type == "cuda"
    row = trainer.train_epoch(DaySampler(panel, range(WINDOW - 1, 40), max_stocks=64), 0)
    assert np.isfinite(row["train/total_loss"])
