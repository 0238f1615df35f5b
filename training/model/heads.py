"""Forecast heads: a point forecast and monotone quantiles for every horizon."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from training.model.grn import GatedResidualNetwork


class ForecastHeads(nn.Module):
    """Point and quantile forecasts of each horizon's return from a stock representation.

    A shared GRN feeds two linear heads: the point forecast [N, H], and for the quantiles a
    base q_1 plus Q-1 increments made positive by softplus and summed cumulatively:
    q_j = q_1 + sum_{i<j} softplus(delta_i). Quantiles are therefore non-decreasing in the
    quantile level by construction (no crossing). Outputs are float32.

    Shapes: z: [N, d] -> (point [N, H], quantiles [N, H, Q]).
    """

    def __init__(self, d: int, n_horizons: int, n_quantiles: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_horizons, self.n_quantiles = n_horizons, n_quantiles
        self.shared = GatedResidualNetwork(d, d, d, dropout)
        self.point = nn.Linear(d, n_horizons)
        self.quantile = nn.Linear(d, n_horizons * n_quantiles)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        z = self.shared(z)
        point = self.point(z).float()
        raw = self.quantile(z).float().reshape(-1, self.n_horizons, self.n_quantiles)
        steps = F.softplus(raw[..., 1:]).cumsum(dim=-1)
        quantiles = raw[..., :1] + F.pad(steps, (1, 0))
        return point, quantiles
