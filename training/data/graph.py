"""The day graph: the latest gold.peer_graph snapshot at or before a trade date.

Edges point from a peer to the stock it informs (``edge_index[0]`` = peer, ``[1]`` =
stock, PyG's source-to-target flow) and carry the snapshot's return correlation as a
one-column ``edge_attr``. A day before the first snapshot has no edges; a snapshot dated
after the day is never used (no look-ahead).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gogooku3.lake import deltars


@dataclass
class PeerGraphs:
    """Snapshots over the panel's code universe.

    ``snapshot_of_day[d]`` = index into ``snapshots`` for panel day ``d`` (-1: none yet);
    each snapshot is ``(src, dst, corr)`` arrays of global stock indices.
    """

    snapshot_dates: list[dt.date]
    snapshots: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    snapshot_of_day: np.ndarray
    n_codes: int
    _device_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def day_edges(self, day: int, stocks: torch.Tensor, pad_to: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """``edge_index [2, E]`` (long, local positions in ``stocks``) and ``edge_attr [E, 1]``
        for panel day ``day``: the snapshot's edges whose both ends are in ``stocks``.

        With ``pad_to`` (rows of the padded batch; the caller ensures at least
        ``len(stocks) + 2``, ``DevicePanel.batch``) E is fixed
        at ``pad_to x max_in_degree`` whatever the day: every edge slot that holds no real
        edge becomes the padding edge (row n -> row n + 1, attribute 0, n = ``len(stocks)``),
        which joins two padding rows. Built without a data-dependent shape, so without a
        host sync on CUDA (the filtering of the unpadded form needs one).
        """
        device, n = stocks.device, len(stocks)
        width = self.max_in_degree
        k = int(self.snapshot_of_day[day])
        if k < 0:
            peers = torch.full((n, width), -1, dtype=torch.long, device=device)
            corr = torch.zeros((n, width), device=device)
        else:
            all_peers, all_corr = self._in_edges(k, device)
            peers, corr = all_peers[stocks], all_corr[stocks]
        local = torch.full((self.n_codes + 1,), -1, dtype=torch.long, device=device)
        local[stocks] = torch.arange(n, device=device)
        src = local[peers]  # a missing peer (-1) reads the last slot: -1 too
        dst = torch.arange(n, device=device).unsqueeze(1).expand(n, width)
        real = src >= 0
        if pad_to is None:
            return torch.stack([src[real], dst[real]]), corr[real].unsqueeze(1)
        spare = (pad_to - n) * width
        edge_index = torch.cat([
            torch.stack([torch.where(real, src, n), torch.where(real, dst, n + 1)]).flatten(1),
            torch.arange(n, n + 2, device=device).unsqueeze(1).expand(2, spare),
        ], dim=1)
        edge_attr = torch.cat([torch.where(real, corr, 0.0).flatten(), corr.new_zeros(spare)])
        return edge_index, edge_attr.unsqueeze(1)

    @functools.cached_property
    def max_in_degree(self) -> int:
        """The most peers any code has in any snapshot: a batch of N stocks has at most
        N x this many edges."""
        return max((int(np.bincount(dst).max()) for _, dst, _ in self.snapshots if len(dst)),
                   default=0)

    def _in_edges(self, k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Snapshot ``k`` as one row per code: its peers (global indices, -1 in unused
        slots) and their correlations (0 there), both [n_codes, max_in_degree], on
        ``device`` (kept per snapshot and device)."""
        key = (k, str(device))
        if key not in self._device_cache:
            src, dst, corr = self.snapshots[k]
            order = np.argsort(dst, kind="stable")
            dst_sorted = dst[order]
            starts = np.searchsorted(dst_sorted, np.arange(self.n_codes))
            slot = np.arange(len(dst)) - starts[dst_sorted]  # position among the code's peers
            peers = np.full((self.n_codes, self.max_in_degree), -1, dtype=np.int64)
            weights = np.zeros((self.n_codes, self.max_in_degree), dtype=np.float32)
            peers[dst_sorted, slot] = src[order]
            weights[dst_sorted, slot] = corr[order]
            self._device_cache[key] = (torch.as_tensor(peers, device=device),
                                       torch.as_tensor(weights, device=device))
        return self._device_cache[key]


def load_peer_graphs(days: Sequence[dt.date], codes: Sequence[str],
                     lake_root: str | None = None) -> PeerGraphs:
    """Snapshots of gold.peer_graph up to ``days[-1]`` mapped onto ``codes`` (edges to codes
    outside the universe are dropped), and each day's latest snapshot at or before it."""
    table = deltars.read_table("gold.peer_graph", None, days[-1], lake_root=lake_root)
    frame = table.to_pandas()
    code_arr = np.asarray(codes, dtype=str)
    snap_dates = sorted(set(frame["date"]))
    snapshots = []
    for d in snap_dates:
        part = frame[frame["date"] == d]
        dst = np.searchsorted(code_arr, part["code"].to_numpy(dtype=str))
        src = np.searchsorted(code_arr, part["peer_code"].to_numpy(dtype=str))
        dst_c, src_c = np.minimum(dst, len(code_arr) - 1), np.minimum(src, len(code_arr) - 1)
        ok = (code_arr[dst_c] == part["code"].to_numpy(dtype=str)) & (
            code_arr[src_c] == part["peer_code"].to_numpy(dtype=str))
        corr = part["corr"].to_numpy(dtype=np.float64)
        ok &= np.isfinite(corr)
        snapshots.append((src[ok], dst[ok], corr[ok].astype(np.float32)))
    return PeerGraphs(snap_dates, snapshots, snapshot_for_days(days, snap_dates), len(codes))


def snapshot_for_days(days: Sequence[dt.date], snapshot_dates: Sequence[dt.date]) -> np.ndarray:
    """For each day, the index of the latest snapshot dated at or before it (-1: none)."""
    snap = np.array(snapshot_dates, dtype="datetime64[D]")
    day = np.array(days, dtype="datetime64[D]")
    return np.searchsorted(snap, day, side="right") - 1
