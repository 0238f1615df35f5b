"""FAN: frequency-adaptive normalization (removes each window's dominant frequencies)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.model.denorm import ForecastDenormalizer


def dominant_components(x: Tensor, basis: RealDFTBasis, top_k: int) -> Tensor:
    """The part of each window made of its ``top_k`` highest-energy DFT bins, for windows
    of the length w of ``basis`` (on x's device and of x's dtype).

    The time axis (the LAST axis here) is cut into consecutive non-overlapping windows
    aligned to the end of the sequence (the most recent ``window`` steps form the last
    one); the first ``L % window`` steps, if any, belong to no window and get a zero
    component. Within a window of length w the real-DFT bins 0..w//2 are ranked by their
    energy in the signal (|X_k|^2, counted twice for the bins that stand for a conjugate
    pair, i.e. all but the DC bin and, for even w, the Nyquist bin); the DC bin (the
    window mean) competes like any other; with ``top_k`` = 1 bins tied for the top energy
    are all kept (only in degenerate windows, e.g. all zeros, where it changes nothing).
    The component is the inverse real DFT of the kept bins (``irfft`` of the masked
    ``rfft``).

    The windows are short (5..60 steps), so the transforms are two small matmuls with a
    fixed basis (``RealDFTBasis``) rather than FFT calls, whose per-transform overhead
    dominates at these lengths; per row that is about 2 x w x (w + 2) multiply-adds.

    Shapes: x: [..., L] (float32, time last) -> [..., L].
    """
    window, length = basis.window, x.shape[-1]
    head = length % window
    rows = x[..., head:].reshape(-1, window)  # one window per row
    n_bins = basis.pair.shape[0]
    coef = rows @ basis.analysis  # [rows, 2B]: real parts, then imaginary parts
    real, imag = coef[:, :n_bins], coef[:, n_bins:]
    energy = (real * real + imag * imag) * basis.pair
    if top_k == 1:  # a max and a compare: much cheaper than topk over a tiny last axis
        keep = energy == energy.amax(dim=-1, keepdim=True)
    else:
        top = energy.topk(min(top_k, n_bins), dim=-1).indices
        keep = torch.zeros_like(energy, dtype=torch.bool).scatter_(-1, top, True)
    keep = keep.to(coef.dtype).unsqueeze(1)  # [rows, 1, B], for the real and imaginary parts
    kept = (coef.unflatten(-1, (2, n_bins)) * keep).flatten(-2)
    dominant = (kept @ basis.synthesis).reshape(*x.shape[:-1], length - head)
    return F.pad(dominant, (head, 0))


class RealDFTBasis(nn.Module):
    """The real-DFT matrices of one window length w, as buffers (they follow the model's
    device; not part of its state dict): ``analysis`` [w, 2B], ``synthesis`` [2B, w] and
    ``pair`` [B] for the B = w//2 + 1 real-DFT bins.

    ``x @ analysis`` = [Re X_0..X_{B-1}, Im X_0..X_{B-1}] of a length-w row x;
    ``[Re, Im] @ synthesis`` = the inverse real DFT (irfft), which counts every bin but DC
    and Nyquist twice (``pair``) and ignores their imaginary parts. Built in float64, kept
    in ``dtype``.
    """

    def __init__(self, window: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.window = window
        t = torch.arange(window, dtype=torch.float64)
        k = torch.arange(window // 2 + 1, dtype=torch.float64)
        angle = 2 * math.pi * t[:, None] * k[None, :] / window  # [w, B]
        pair = torch.full((k.numel(),), 2.0, dtype=torch.float64)
        pair[0] = 1.0
        if window % 2 == 0:
            pair[-1] = 1.0
        analysis = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=1)
        synthesis = torch.cat([pair[:, None] * torch.cos(angle).T,
                             -pair[:, None] * torch.sin(angle).T], dim=0) / window
        for name, value in (("analysis", analysis), ("synthesis", synthesis), ("pair", pair)):
            self.register_buffer(name, value.to(dtype), persistent=False)


class FrequencyAdaptiveNorm(nn.Module):
    """Remove the dominant frequency components of every feature, coarse to fine.

    For each window length w in ``windows`` (default 20, 10, 5; those longer than L are
    skipped), in that order, the dominant components of the current residual are
    found per window (``dominant_components``) and subtracted. The model sees the final
    residual (the fast, stationary part). What was removed, the non-stationary part
    P = x - residual, is summarized per feature by its mean over the sequence and its value
    at the last step: stats = [mean_t P, P_L], [N, 2F]. Those statistics drive the learned
    de-normalization of the forecast (``ForecastDenormalizer``) and, in the full model,
    the encoder's context. Runs in float32 with autocast off (the energy ranking and the
    removed parts are not rounded to bf16).

    Shapes: x: [N, L, F] -> (residual [N, L, F] float32, stats [N, 2F] float32);
    ``denormalize``: y [N, H] or [N, H, Q], stats [N, 2F] -> same shape as y.
    """

    def __init__(
        self, n_features: int, n_horizons: int, windows: tuple[int, ...], top_k: int
    ) -> None:
        super().__init__()
        self.windows = tuple(windows)
        self.bases = nn.ModuleList(RealDFTBasis(w) for w in self.windows)
        self.top_k = top_k
        self.n_stats = 2 * n_features
        self.denormalizer = ForecastDenormalizer(self.n_stats, n_horizons)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(x.device.type, enabled=False):
            series = x.float().transpose(1, 2).contiguous()  # [N, F, L]: time last for the DFT
            residual = series
            for basis in self.bases:
                if basis.window <= residual.shape[-1]:
                    residual = residual - dominant_components(residual, basis, self.top_k)
            removed = series - residual
            stats = torch.cat([removed.mean(dim=-1), removed[..., -1]], dim=-1)
        return residual.transpose(1, 2), stats

    def denormalize(self, y: Tensor, stats: Tensor) -> Tensor:
        return self.denormalizer(y, stats)
