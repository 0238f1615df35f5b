"""Forecast losses for one trade date: pinball, MSE, long-short Sharpe and soft RankIC.

Every term is computed per horizon over the stocks whose label is present (``mask``), then
averaged over horizons with ``horizon_weights`` (renormalized over the horizons that have at
least one label). A masked label contributes nothing: not to a value, not to a gradient,
even when it holds NaN.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from training.model.atft_gat_fan import ModelOutput


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms; total = quantile_weight * pinball + mse_weight * mse
    + sharpe_weight * sharpe + rankic_weight * rankic (sharpe and rankic are negated
    scores, so lower is better for every term)."""

    horizon_weights: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4, 0.2)
    quantile_weight: float = 1.0
    mse_weight: float = 1.0
    sharpe_weight: float = 0.1
    rankic_weight: float = 0.0
    sharpe_eps: float = 1e-12
    rankic_temperature: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizon_weights", tuple(float(w) for w in self.horizon_weights))
        if not self.horizon_weights or any(w < 0 for w in self.horizon_weights):
            raise ValueError(f"loss config: horizon_weights must be >= 0, got {self.horizon_weights}")
        if sum(self.horizon_weights) <= 0:
            raise ValueError("loss config: horizon_weights must not all be 0")
        for name in ("quantile_weight", "mse_weight", "sharpe_weight", "rankic_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss config: {name} must be >= 0, got {getattr(self, name)}")
        if self.sharpe_eps <= 0 or self.rankic_temperature <= 0:
            raise ValueError("loss config: sharpe_eps and rankic_temperature must be > 0")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossConfig:
        """Build from a mapping; raises ValueError naming any unknown key."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown loss config key(s): {', '.join(unknown)}")
        return cls(**d)


def forecast_loss(out: ModelOutput, target: Tensor, mask: Tensor, cfg: LossConfig) -> dict[str, Tensor]:
    """The day's loss terms and their weighted total.

    Shapes: out.point [N, H], out.quantiles [N, H, Q], target [N, H] (any value where
    masked, NaN included), mask [N, H] bool (True = label present); ``out.levels`` are the
    Q quantile levels; ``cfg.horizon_weights`` must have H entries.
    Returns 0-dim float32 tensors under keys total, pinball, mse, sharpe, rankic
    (rankic is 0 and not computed when ``cfg.rankic_weight`` is 0).
    """
    n_h = target.shape[1]
    if len(cfg.horizon_weights) != n_h:
        raise ValueError(f"loss: {len(cfg.horizon_weights)} horizon_weights for {n_h} horizons")
    if out.point.shape != target.shape or mask.shape != target.shape:
        raise ValueError(
            f"loss: point {tuple(out.point.shape)}, target {tuple(target.shape)} and mask "
            f"{tuple(mask.shape)} must have the same [N, H] shape"
        )
    if out.quantiles.shape[:2] != target.shape or out.quantiles.shape[2] != len(out.levels):
        raise ValueError(f"loss: quantiles {tuple(out.quantiles.shape)} do not match "
                         f"target {tuple(target.shape)} and {len(out.levels)} levels")
    mask = mask.bool()
    y = torch.where(mask, target.float(), 0.0)
    point = out.point.float()
    weights = _horizon_weights(cfg, mask)
    terms = {
        "pinball": pinball_loss(out.quantiles.float(), y, mask, out.levels, weights),
        "mse": _weighted(_masked_mean((point - y).square(), mask), weights),
        "sharpe": -_weighted(long_short_sharpe(point, y, mask, cfg.sharpe_eps), weights),
        "rankic": (
            -_weighted(soft_rank_ic(point, y, mask, cfg.rankic_temperature), weights)
            if cfg.rankic_weight > 0 else point.sum() * 0.0
        ),
    }
    terms["total"] = (
        cfg.quantile_weight * terms["pinball"] + cfg.mse_weight * terms["mse"]
        + cfg.sharpe_weight * terms["sharpe"] + cfg.rankic_weight * terms["rankic"]
    )
    return terms


def pinball_loss(
    q_pred: Tensor, y: Tensor, mask: Tensor, levels: tuple[float, ...], weights: Tensor
) -> Tensor:
    """Horizon-weighted mean pinball loss: per horizon, the mean over present labels and
    the Q levels of max(tau * (y - q), (tau - 1) * (y - q)).

    Shapes: q_pred [N, H, Q], y [N, H] (masked entries must be finite), mask [N, H],
    weights [H] -> scalar.
    """
    tau = torch.tensor(levels, dtype=q_pred.dtype, device=q_pred.device)
    diff = y.unsqueeze(-1) - q_pred
    per_entry = torch.maximum(tau * diff, (tau - 1.0) * diff).mean(dim=-1)
    return _weighted(_masked_mean(per_entry, mask), weights)


def long_short_sharpe(pred: Tensor, y: Tensor, mask: Tensor, eps: float) -> Tensor:
    """Per horizon, the Sharpe ratio (no annualization) of the day's long-short portfolio.

    Weights: the predictions demeaned over the present stocks, divided by their L1 norm
    (+ eps), so the book is dollar-neutral with gross exposure 1; absent stocks weigh 0.
    The portfolio's return is R = sum_i w_i r_i; its risk is the dispersion of the
    per-stock contributions c_i = w_i r_i over the n present stocks:
    Sharpe = mean(c) / sqrt(var(c) + eps) = (R / n) / sqrt(var(c) + eps).

    Shapes: pred, y, mask [N, H] -> [H].
    """
    m = mask.float()
    n = m.sum(dim=0).clamp(min=1.0)
    centred = (pred - (pred * m).sum(dim=0) / n) * m
    w = centred / (centred.abs().sum(dim=0) + eps)
    c = w * y
    mean = c.sum(dim=0) / n
    var = (((c - mean) * m).square()).sum(dim=0) / n
    return mean / torch.sqrt(var + eps)


def soft_rank_ic(pred: Tensor, y: Tensor, mask: Tensor, temperature: float) -> Tensor:
    """Per horizon, the Pearson correlation between soft ranks of the predictions and the
    ranks of the realized returns over the present stocks (a differentiable RankIC).

    Predictions are standardized over the present stocks, then the soft rank of stock i is
    sum_j sigmoid((p_i - p_j) / temperature) over present j (-> the hard rank as the
    temperature -> 0). Realized ranks are hard (they need no gradient), tied labels sharing
    their mean rank (Spearman's convention), so the value does not depend on the order or
    number of absent rows. O(N^2) memory per horizon.

    Shapes: pred, y, mask [N, H] -> [H].
    """
    m = mask.float()
    n = m.sum(dim=0).clamp(min=1.0)
    mean = (pred * m).sum(dim=0) / n
    std = torch.sqrt((((pred - mean) * m).square()).sum(dim=0) / n + 1e-12)
    z = (pred - mean) / std
    pair = torch.sigmoid((z.unsqueeze(1) - z.unsqueeze(0)) / temperature)  # [N_i, N_j, H]
    soft = (pair * m.unsqueeze(0)).sum(dim=1)
    below = (y.unsqueeze(0) < y.unsqueeze(1)).to(pred.dtype)  # [i, j]: y_j < y_i
    ties = (y.unsqueeze(0) == y.unsqueeze(1)).to(pred.dtype)
    hard = ((below + 0.5 * ties) * m.unsqueeze(0)).sum(dim=1) - 0.5  # present j only
    return _masked_corr(soft, hard, m, n)


def _masked_corr(a: Tensor, b: Tensor, m: Tensor, n: Tensor) -> Tensor:
    a = (a - (a * m).sum(dim=0) / n) * m
    b = (b - (b * m).sum(dim=0) / n) * m
    return (a * b).sum(dim=0) / torch.sqrt(a.square().sum(dim=0) * b.square().sum(dim=0) + 1e-12)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Per horizon mean over present entries, [N, H] -> [H] (0 where none is present)."""
    m = mask.float()
    return (values * m).sum(dim=0) / m.sum(dim=0).clamp(min=1.0)


def _horizon_weights(cfg: LossConfig, mask: Tensor) -> Tensor:
    """The configured horizon weights, zeroed for horizons without any label, summing to 1
    (all zero when no label is present at all)."""
    w = torch.tensor(cfg.horizon_weights, dtype=torch.float32, device=mask.device)
    w = w * mask.any(dim=0).float()
    return w / w.sum().clamp(min=1e-12)


def _weighted(per_horizon: Tensor, weights: Tensor) -> Tensor:
    return (per_horizon * weights).sum()
