"""Forecast losses against hand-written numpy formulas; masked labels count for nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from training.losses import LossConfig, forecast_loss
from training.model import ModelOutput

LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)
HW = np.array([1.0, 0.8, 0.6, 0.4, 0.2])


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _case(n: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    point = rng.normal(size=(n, 5)).astype(np.float32)
    quantiles = np.sort(rng.normal(size=(n, 5, 5)), axis=-1).astype(np.float32)
    target = rng.normal(size=(n, 5)).astype(np.float32)
    mask = rng.random((n, 5)) > 0.25
    mask[0] = True  # every horizon keeps a label
    return point, quantiles, target, mask


def _out(point, quantiles, grad: bool = False) -> ModelOutput:
    p = torch.tensor(point, requires_grad=grad)
    q = torch.tensor(quantiles, requires_grad=grad)
    return ModelOutput(point=p, quantiles=q, levels=LEVELS)


def _np_pinball(quantiles, target, mask):
    per_h = []
    for h in range(5):
        rows = mask[:, h]
        total = 0.0
        for i in np.flatnonzero(rows):
            for j, tau in enumerate(LEVELS):
                u = target[i, h] - quantiles[i, h, j]
                total += tau * u if u >= 0 else (tau - 1.0) * u
        per_h.append(total / (rows.sum() * len(LEVELS)))
    return float(np.dot(HW, per_h) / HW.sum())


def _np_sharpe(point, target, mask, eps=1e-12):
    per_h = []
    for h in range(5):
        p, y = point[mask[:, h], h].astype(np.float64), target[mask[:, h], h].astype(np.float64)
        w = p - p.mean()
        w = w / (np.abs(w).sum() + eps)
        c = w * y
        per_h.append(c.mean() / np.sqrt(c.var() + eps))
    return float(np.dot(HW, per_h) / HW.sum())


def test_pinball_and_mse_equal_hand_written_formulas_with_a_mask():
    point, quantiles, target, mask = _case()
    loss = forecast_loss(_out(point, quantiles), torch.tensor(target), torch.tensor(mask),
                         LossConfig(sharpe_weight=0.0))
    assert loss["pinball"].item() == pytest.approx(_np_pinball(quantiles, target, mask), rel=1e-5)
    mse = [((point[mask[:, h], h] - target[mask[:, h], h]) ** 2).mean() for h in range(5)]
    assert loss["mse"].item() == pytest.approx(float(np.dot(HW, mse) / HW.sum()), rel=1e-5)
    assert loss["total"].item() == pytest.approx(loss["pinball"].item() + loss["mse"].item(), rel=1e-6)


def test_sharpe_is_the_negated_long_short_sharpe_of_the_day():
    point, quantiles, target, mask = _case(n=30, seed=1)
    loss = forecast_loss(_out(point, quantiles), torch.tensor(target), torch.tensor(mask), LossConfig())
    assert loss["sharpe"].item() == pytest.approx(-_np_sharpe(point, target, mask), rel=1e-4)
    perfect = forecast_loss(_out(target, quantiles), torch.tensor(target), torch.tensor(mask),
                            LossConfig())
    reverse = forecast_loss(_out(-target, quantiles), torch.tensor(target), torch.tensor(mask),
                            LossConfig())
    assert perfect["sharpe"].item() < 0 < reverse["sharpe"].item()


def test_equal_predictions_give_a_zero_sharpe_with_finite_gradients():
    _, quantiles, target, _ = _case()
    out = _out(np.zeros((9, 5), np.float32), quantiles, grad=True)
    loss = forecast_loss(out, torch.tensor(target), torch.ones(9, 5, dtype=torch.bool),
                         LossConfig(sharpe_weight=1.0, quantile_weight=0.0, mse_weight=0.0))
    loss["total"].backward()
    assert loss["sharpe"].item() == 0.0
    assert torch.isfinite(out.point.grad).all()


def test_soft_rank_ic_tracks_spearman_and_has_gradients():
    point, quantiles, target, _ = _case(n=40, seed=2)
    point = 0.6 * target + 0.4 * point  # a correlated forecast
    mask = np.ones_like(target, dtype=bool)
    out = _out(point, quantiles, grad=True)
    loss = forecast_loss(out, torch.tensor(target), torch.tensor(mask),
                         LossConfig(rankic_weight=1.0, rankic_temperature=0.01))
    expected = np.dot(HW, [spearmanr(point[:, h], target[:, h])[0] for h in range(5)]) / HW.sum()
    assert -loss["rankic"].item() == pytest.approx(expected, abs=0.02)
    loss["rankic"].backward()
    assert out.point.grad.abs().sum() > 0


def test_soft_rank_ic_gives_tied_labels_their_mean_rank_whatever_the_absent_rows():
    point, quantiles, target, _ = _case(n=40, seed=4)
    target = np.round(target * 30) / 30  # many tied labels per horizon
    point = 0.6 * target + 0.4 * point
    cfg = LossConfig(rankic_weight=1.0, rankic_temperature=0.01)
    expected = np.dot(HW, [spearmanr(point[:, h], target[:, h])[0] for h in range(5)]) / HW.sum()
    values = []
    for extra in (0, 7):  # absent rows appended, e.g. a padded batch
        p = np.concatenate([point, np.zeros((extra, 5), np.float32)])
        q = np.concatenate([quantiles, np.zeros((extra, 5, quantiles.shape[2]), np.float32)])
        y = np.concatenate([target, np.zeros((extra, 5), np.float32)])
        mask = np.arange(len(y))[:, None].repeat(5, axis=1) < len(target)
        loss = forecast_loss(_out(p, q), torch.tensor(y), torch.tensor(mask), cfg)
        values.append(loss["rankic"].item())
    assert values[1] == pytest.approx(values[0], abs=1e-6)
    assert -values[0] == pytest.approx(expected, abs=0.02)


def test_masked_labels_contribute_nothing_to_any_term_or_gradient():
    point, quantiles, target, mask = _case(n=12, seed=3)
    cfg = LossConfig(rankic_weight=0.5)
    garbage = target.copy()
    garbage[~mask] = np.nan
    garbage[4] = np.nan  # stock 4 has no label at all
    full_mask = mask.copy()
    full_mask[4] = False
    out = _out(point, quantiles, grad=True)
    loss = forecast_loss(out, torch.tensor(garbage), torch.tensor(full_mask), cfg)
    loss["total"].backward()
    keep = np.arange(12) != 4
    without = forecast_loss(_out(point[keep], quantiles[keep]), torch.tensor(target[keep]),
                            torch.tensor(mask[keep]), cfg)
    for key in ("total", "pinball", "mse", "sharpe", "rankic"):
        assert loss[key].item() == pytest.approx(without[key].item(), rel=1e-5, abs=1e-7), key
    masked = torch.tensor(~full_mask)
    assert torch.all(out.point.grad[masked] == 0)
    assert torch.all(out.quantiles.grad[masked] == 0)
    assert torch.isfinite(out.point.grad).all()


def test_a_day_without_labels_gives_zero_loss():
    point, quantiles, target, _ = _case()
    out = _out(point, quantiles, grad=True)
    loss = forecast_loss(out, torch.full((9, 5), float("nan")), torch.zeros(9, 5, dtype=torch.bool),
                         LossConfig(rankic_weight=1.0))
    loss["total"].backward()
    assert loss["total"].item() == 0.0
    assert torch.all(out.point.grad == 0)


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="sharpe_wieght"):
        LossConfig.from_dict({"sharpe_wieght": 1.0})
    point, quantiles, target, mask = _case()
    with pytest.raises(ValueError, match="3 horizon_weights for 5 horizons"):
        forecast_loss(_out(point, quantiles), torch.tensor(target), torch.tensor(mask),
                      LossConfig(horizon_weights=(1.0, 0.5, 0.2)))
