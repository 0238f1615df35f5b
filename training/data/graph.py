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
from dataclasses import dataclass

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

    def day_edges(self, day: int, stocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``edge_index [2, E]`` (long, local positions in ``stocks``) and ``edge_attr [E, 1]``
        for panel day ``day``, keeping edges whose both ends are in ``stocks``."""
        device = stocks.device
        k = int(self.snapshot_of_day[day])
        if k < 0:
            return (torch.zeros((2, 0), dtype=torch.long, device=device),
                    torch.zeros((0, 1), dtype=torch.float32, device=device))
        src, dst, corr = self._tensors(k, device)
        local = torch.full((self.n_codes,), -1, dtype=torch.long, device=device)
        local[stocks] = torch.arange(len(stocks), device=device)
        s, d = local[src], local[dst]
        keep = (s >= 0) & (d >= 0)
        return torch.stack([s[keep], d[keep]]), corr[keep].unsqueeze(1)

    @functools.cached_property
    def max_in_degree(self) -> int:
        """The most peers any code has in any snapshot: a batch of N stocks has at most
        N x this many edges."""
        return max((int(np.bincount(dst).max()) for _, dst, _ in self.snapshots if len(dst)),
                   default=0)

    def _tensors(self, k: int, device: torch.device):
        cache = self.__dict__.setdefault("_cache", {})
        key = (k, str(device))
        if key not in cache:
            src, dst, corr = self.snapshots[k]
            cache[key] = (torch.as_tensor(src, dtype=torch.long, device=device),
                          torch.as_tensor(dst, dtype=torch.long, device=device),
                          torch.as_tensor(corr, dtype=torch.float32, device=device))
        return cache[key]


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
