"""Learned de-normalization of a return forecast from adaptive-normalization statistics."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Bound on |log scale|: the learned scale stays within [e^-3, e^3] (soft, via tanh).
_LOG_SCALE_BOUND = 3.0


class ForecastDenormalizer(nn.Module):
    """Map the statistics a normalization removed back onto the forecast.

    The model forecasts forward returns, not the normalized input series, so the removed
    statistics cannot simply be added back. Instead a linear map of them gives, per stock
    and horizon, a shift b and a log-scale s (bounded to +-3 by a scaled tanh):
    ``y' = y * exp(s) + b``. The same (s, b) apply to the point forecast and to every
    quantile, so quantile order is preserved (exp(s) > 0). The map starts at zero, i.e.
    the identity, and is learned with the rest of the model. Computed in float32.

    Shapes: y: [N, H] or [N, H, Q], stats: [N, S] -> same shape as y.
    """

    def __init__(self, n_stats: int, n_horizons: int) -> None:
        super().__init__()
        self.proj = nn.Linear(n_stats, 2 * n_horizons)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, y: Tensor, stats: Tensor) -> Tensor:
        shift, log_scale = self.proj(stats).float().chunk(2, dim=-1)
        log_scale = _LOG_SCALE_BOUND * torch.tanh(log_scale / _LOG_SCALE_BOUND)
        if y.dim() == 3:
            shift, log_scale = shift.unsqueeze(-1), log_scale.unsqueeze(-1)
        return y.float() * torch.exp(log_scale) + shift
