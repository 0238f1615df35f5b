"""FAN: frequency-adaptive normalization (removes each window's dominant frequencies)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.model.denorm import ForecastDenormalizer


def dominant_components(x: Tensor, window: int, top_k: int) -> Tensor:
    """The part of each window made of its ``top_k`` highest-energy rFFT bins.

    The time axis (the LAST axis here) is cut into consecutive non-overlapping windows
    aligned to the end of the sequence (the most recent ``window`` steps form the last
    one); the first ``L % window`` steps, if any, belong to no window and get a zero
    component. Within a window of length w the rFFT bins 0..w//2 are ranked by their
    energy in the signal (|X_k|^2, counted twice for the bins that stand for a conjugate
    pair, i.e. all but the DC bin and, for even w, the Nyquist bin); the DC bin (the
    window mean) competes like any other. The component is the inverse rFFT of the kept
    bins.

    Shapes: x: [..., L] (float32, time last) -> [..., L].
    """
    length = x.shape[-1]
    head = length % window
    segments = x[..., head:].unflatten(-1, ((length - head) // window, window))
    spectrum = torch.fft.rfft(segments, dim=-1)
    n_bins = spectrum.shape[-1]
    pair = torch.full((n_bins,), 2.0, device=x.device)
    pair[0] = 1.0
    if window % 2 == 0:
        pair[-1] = 1.0
    energy = torch.view_as_real(spectrum).square().sum(dim=-1) * pair
    top = energy.topk(min(top_k, n_bins), dim=-1).indices
    keep = torch.zeros_like(energy).scatter_(-1, top, 1.0)
    dominant = torch.fft.irfft(spectrum * keep, n=window, dim=-1).flatten(-2)
    return F.pad(dominant, (head, 0))


class FrequencyAdaptiveNorm(nn.Module):
    """Remove the dominant frequency components of every feature, coarse to fine.

    For each window length w in ``windows`` (default 20, 10, 5; those longer than L are
    skipped), in that order, the dominant components of the current residual are
    found per window (``dominant_components``) and subtracted. The model sees the final
    residual (the fast, stationary part). What was removed, the non-stationary part
    P = x - residual, is summarized per feature by its mean over the sequence and its value
    at the last step: stats = [mean_t P, P_L], [N, 2F]. Those statistics drive the learned
    de-normalization of the forecast (``ForecastDenormalizer``) and, in the full model,
    the encoder's context. Runs in float32 with autocast off (FFT has no bf16 kernel).

    Shapes: x: [N, L, F] -> (residual [N, L, F] float32, stats [N, 2F] float32);
    ``denormalize``: y [N, H] or [N, H, Q], stats [N, 2F] -> same shape as y.
    """

    def __init__(
        self, n_features: int, n_horizons: int, windows: tuple[int, ...], top_k: int
    ) -> None:
        super().__init__()
        self.windows = tuple(windows)
        self.top_k = top_k
        self.n_stats = 2 * n_features
        self.denormalizer = ForecastDenormalizer(self.n_stats, n_horizons)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(x.device.type, enabled=False):
            series = x.float().transpose(1, 2)  # [N, F, L]: time last for the FFT
            residual = series
            for window in self.windows:
                if window <= residual.shape[-1]:
                    residual = residual - dominant_components(residual, window, self.top_k)
            removed = series - residual
            stats = torch.cat([removed.mean(dim=-1), removed[..., -1]], dim=-1)
        return residual.transpose(1, 2), stats

    def denormalize(self, y: Tensor, stats: Tensor) -> Tensor:
        return self.denormalizer(y, stats)
