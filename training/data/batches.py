"""Day batches: windows gathered by index from the panel on the device.

A batch is the stocks of one trade date (at most ``max_stocks``, at least
``min_stocks``); days are shuffled in training, and a batch never holds two dates, so
it never crosses a fold boundary either (folds are sets of days). The window of stock
``s`` on day ``t`` is ``features[t-L+1 .. t, s]``: one advanced-indexing gather over
the device-resident panel, no per-sample copies. Days before the panel's first day
are zeros with ``observed`` false.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.data.graph import PeerGraphs
from training.data.panel import Panel


@dataclass
class FoldScaler:
    """Statistics with history, fit on a fold's training days only.

    Features: ``clip((x - median) / scale, ±clip)`` with a robust scale (IQR / 1.349,
    1 where degenerate); labels: divided by their per-horizon standard deviation.
    """

    median: np.ndarray      # [F]
    scale: np.ndarray       # [F]
    label_std: np.ndarray   # [H]
    clip: float = 5.0

    @classmethod
    def fit(cls, panel: Panel, train_days: Sequence[int], clip: float = 5.0,
            max_rows: int = 200_000, seed: int = 0) -> FoldScaler:
        """Fit on the observed values of ``train_days`` (a seeded sample of at most
        ``max_rows`` stock-days per feature); never reads another day."""
        days = np.asarray(train_days)
        x = panel.features[days].reshape(-1, panel.features.shape[2])
        ok = panel.observed[days].reshape(x.shape)
        rng = np.random.default_rng(seed)
        if len(x) > max_rows:
            rows = rng.choice(len(x), max_rows, replace=False)
            x, ok = x[rows], ok[rows]
        xm = np.where(ok, x, np.nan)
        with np.errstate(all="ignore"):
            q25, med, q75 = np.nanpercentile(xm, [25, 50, 75], axis=0)
        scale = (q75 - q25) / 1.349
        bad = ~np.isfinite(scale) | (scale < 1e-6)
        scale[bad] = 1.0
        med = np.where(np.isfinite(med), med, 0.0)
        y = panel.labels[days].reshape(-1, panel.labels.shape[2])
        y_ok = panel.label_ok[days].reshape(y.shape)
        std = np.array([y[y_ok[:, h], h].std() if y_ok[:, h].sum() > 1 else 1.0
                        for h in range(y.shape[1])])
        std = np.where(std > 1e-9, std, 1.0)
        return cls(med.astype(np.float32), scale.astype(np.float32), std.astype(np.float32), clip)

    def to_dict(self) -> dict:
        return {"median": self.median.tolist(), "scale": self.scale.tolist(),
                "label_std": self.label_std.tolist(), "clip": self.clip}

    @classmethod
    def from_dict(cls, d: dict) -> FoldScaler:
        return cls(np.asarray(d["median"], np.float32), np.asarray(d["scale"], np.float32),
                   np.asarray(d["label_std"], np.float32), float(d["clip"]))


@dataclass
class DayBatch:
    """One trade date's stocks: ``x [N, L, F']``, ``y``/``y_mask [N, H]`` (labels in
    units of the fold's label std), the day graph, and panel indices for bookkeeping.

    A padded batch (``DevicePanel.batch(..., pad_to=R)``) has R rows: the ``len(stocks)``
    real ones first, then zeros with ``y_mask`` false; its padding edges join only padding
    rows, so no real row's forecast or loss depends on them."""

    day: int
    stocks: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    y_mask: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor


class DevicePanel:
    """The scaled panel resident on ``device``; ``batch()`` gathers windows by index."""

    def __init__(self, panel: Panel, scaler: FoldScaler, graphs: PeerGraphs | None,
                 device: torch.device | str = "cpu", window: int = 20,
                 mask_channels: bool = False):
        self.panel, self.graphs, self.window = panel, graphs, window
        self.device = torch.device(device)
        self.mask_channels = mask_channels
        # stock-major [S, D, F]: a stock's window is one contiguous block to gather
        obs = torch.from_numpy(panel.observed).to(self.device).permute(1, 0, 2).contiguous()
        x = torch.from_numpy(panel.features).to(self.device).permute(1, 0, 2)
        med = torch.from_numpy(scaler.median).to(self.device)
        scale = torch.from_numpy(scaler.scale).to(self.device)
        self.x = ((x - med) / scale).clamp_(-scaler.clip, scaler.clip).mul_(obs).contiguous()
        self.obs = obs
        self.y = (torch.from_numpy(panel.labels).to(self.device)
                  / torch.from_numpy(scaler.label_std).to(self.device))
        self.y_ok = torch.from_numpy(panel.label_ok).to(self.device)
        self.label_std = scaler.label_std
        self.scaler = scaler

    @property
    def n_inputs(self) -> int:
        f = self.panel.features.shape[2]
        return 2 * f if self.mask_channels else f

    def batch(self, day: int, stocks: np.ndarray | torch.Tensor,
              pad_to: int | None = None) -> DayBatch:
        """Windows ``[N, L, F']`` of ``stocks`` ending on panel day ``day`` (shapes in class doc).

        ``pad_to`` (at least ``len(stocks) + 2``): pad to that many rows and the graph to
        ``pad_to x graphs.max_in_degree`` edges, so every batch of an epoch has the same
        shapes (what a compiled or captured step needs); see ``DayBatch``."""
        if pad_to is not None and pad_to < len(stocks) + 2:
            raise ValueError(f"pad_to={pad_to} leaves fewer than 2 padding rows for "
                             f"{len(stocks)} stocks")
        idx = torch.as_tensor(stocks, dtype=torch.long)
        if idx.device.type == "cpu" and self.device.type == "cuda":
            # through pinned memory without blocking: a plain copy waits for the GPU's queue
            idx = idx.pin_memory().to(self.device, non_blocking=True)
        idx = idx.to(self.device)
        steps = torch.arange(day - self.window + 1, day + 1, device=self.device)
        valid = (steps >= 0).to(self.x.dtype)
        steps = steps.clamp(min=0)
        x = self.x[idx[:, None], steps[None, :]]  # [N, L, F]
        if day < self.window - 1:
            x = x * valid[None, :, None]
        if self.mask_channels:
            m = self.obs[idx[:, None], steps[None, :]].to(x.dtype)
            x = torch.cat([x, m * valid[None, :, None]], dim=2)
        if self.graphs is not None:
            edge_index, edge_attr = self.graphs.day_edges(day, idx, pad_to)
        else:
            edge_index = torch.zeros((2, 0), dtype=torch.long, device=self.device)
            edge_attr = torch.zeros((0, 1), device=self.device)
        batch = DayBatch(day, idx, x, self.y[day, idx], self.y_ok[day, idx], edge_index,
                         edge_attr)
        return batch if pad_to is None else self._padded(batch, pad_to)

    @staticmethod
    def _padded(b: DayBatch, rows: int) -> DayBatch:
        """Rows padded with zeros (the graph was padded by ``day_edges``)."""
        n = len(b.stocks)

        def pad(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t, t.new_zeros((rows - n, *t.shape[1:]))])

        b.x, b.y, b.y_mask = pad(b.x), pad(b.y), pad(b.y_mask)
        return b


class DaySampler:
    """Yields ``(day, stock indices)``: one trade date per batch, never mixing dates.

    A day's eligible stocks are those listed that day (and, with ``require_label``, with
    at least one observed label). Days with fewer than ``min_stocks`` are skipped; days
    with more than ``max_stocks`` are split into near-equal chunks (a random partition
    when shuffling). ``shuffle`` reorders days each epoch from ``seed + epoch``.
    """

    def __init__(self, panel: Panel, days: Sequence[int], max_stocks: int = 2048,
                 min_stocks: int = 20, shuffle: bool = False, seed: int = 0,
                 require_label: bool = True):
        if max_stocks < min_stocks:
            raise ValueError(f"max_stocks {max_stocks} < min_stocks {min_stocks}")
        self.days = [int(d) for d in days]
        self.max_stocks, self.min_stocks = max_stocks, min_stocks
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        ok = panel.listed
        if require_label:
            ok = ok & panel.label_ok.any(axis=2)
        self._eligible = {d: np.flatnonzero(ok[d]) for d in self.days}
        self.days = [d for d in self.days if len(self._eligible[d]) >= min_stocks]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(self.days) if self.shuffle else self.days
        for d in order:
            stocks = self._eligible[int(d)]
            if self.shuffle:
                stocks = rng.permutation(stocks)
            n_chunks = -(-len(stocks) // self.max_stocks)
            for chunk in np.array_split(stocks, n_chunks):
                yield int(d), (np.sort(chunk) if self.shuffle else chunk)

    def __len__(self) -> int:
        return sum(-(-len(self._eligible[d]) // self.max_stocks) for d in self.days)

    @property
    def samples(self) -> int:
        """Stock-days per epoch."""
        return sum(len(self._eligible[d]) for d in self.days)
