"""SAN: slice-adaptive normalization (each slice of the window by its own mean and std)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.model.denorm import ForecastDenormalizer

_EPS = 1e-5


class SliceAdaptiveNorm(nn.Module):
    """Normalize each of ``slices`` consecutive slices of the sequence by its own statistics.

    The L steps are split into ``slices`` contiguous slices (``torch.tensor_split``: sizes
    differ by at most one, the longer ones first; L = 20 gives 7, 7, 6). Within slice s and
    per feature f: x' = (x - mu_sf) / sigma_sf, with mu the slice's mean and
    sigma = sqrt(population variance + 1e-10) (a constant slice becomes 0, with finite
    gradients). The statistics (mu and sigma of every slice and feature,
    [N, 2 * slices * F]) drive the learned de-normalization of the forecast
    (``ForecastDenormalizer``) and, in the full model, the encoder's context. Float32,
    autocast off.

    Shapes: x: [N, L, F] -> (normalized [N, L, F] float32, stats [N, 2*slices*F] float32);
    ``denormalize``: y [N, H] or [N, H, Q], stats -> same shape as y.
    """

    def __init__(self, n_features: int, n_horizons: int, slices: int) -> None:
        super().__init__()
        self.slices = slices
        self.n_stats = 2 * slices * n_features
        self.denormalizer = ForecastDenormalizer(self.n_stats, n_horizons)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(x.device.type, enabled=False):
            parts, stats = [], []
            for part in torch.tensor_split(x.float(), self.slices, dim=1):
                mean = part.mean(dim=1, keepdim=True)
                var = (part - mean).square().mean(dim=1, keepdim=True)
                std = (var + _EPS**2).sqrt()
                parts.append((part - mean) / std)
                stats += [mean.squeeze(1), std.squeeze(1)]
        return torch.cat(parts, dim=1), torch.cat(stats, dim=-1)

    def denormalize(self, y: Tensor, stats: Tensor) -> Tensor:
        return self.denormalizer(y, stats)
