"""Read gold.features / gold.labels with delta-rs into a dense day x stock panel.

The panel is the one in-memory form of the training data: ``features[day, stock, F]``
(float32, missing values set to 0 with ``observed`` marking which were present),
``labels[day, stock, 5]`` (forward returns, NaN-free with ``label_ok``) and ``listed``
(the stock has a gold.features row that day). Training windows are slices of this
array gathered by index (``training.data.windows``), never per-sample copies.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gogooku3.lake import catalog, deltars

log = logging.getLogger(__name__)

HORIZONS = (1, 2, 3, 5, 10)
GOLD_TABLES = ("gold.features", "gold.labels", "gold.peer_graph")


class GoldCoverageError(LookupError):
    """The gold tables do not cover the requested date range (names table and dates)."""


@dataclass
class Panel:
    """Dense ``[days, stocks, ...]`` arrays over ``days`` x ``codes`` (both sorted).

    ``features`` float32 [D, S, F] (0 where missing), ``observed`` bool [D, S, F],
    ``labels`` float32 [D, S, 5] (0 where missing, horizons ``HORIZONS``),
    ``label_ok`` bool [D, S, 5], ``listed`` bool [D, S].
    """

    days: list[dt.date]
    codes: list[str]
    feature_names: list[str]
    features: np.ndarray
    observed: np.ndarray
    labels: np.ndarray
    label_ok: np.ndarray
    listed: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.features.shape  # type: ignore[return-value]

    def day_index(self, day: dt.date) -> int:
        """Index of trade date ``day``; ``GoldCoverageError`` naming it when absent."""
        i = int(np.searchsorted(np.array(self.days, dtype="datetime64[D]"), np.datetime64(day)))
        if i >= len(self.days) or self.days[i] != day:
            raise GoldCoverageError(f"gold.features: no rows for trade date {day.isoformat()}")
        return i


def default_feature_columns() -> list[str]:
    """Every ``*_cs_z`` column of gold.features, in catalogue order."""
    return [c for c in catalog.table("gold.features").column_names if c.endswith("_cs_z")]


def check_gold_range(start: dt.date | None, end: dt.date | None, lake_root: str | None = None,
                     tables: Sequence[str] = GOLD_TABLES) -> dict:
    """Raise ``GoldCoverageError`` unless every gold table holds dates spanning
    ``[start, end]`` (``None`` = the table's own first/last date); return
    ``{table: {"first": iso, "last": iso, "dates": n}}`` for the tables read."""
    out: dict[str, dict] = {}
    for name in tables:
        info = deltars.table_info(name, lake_root=lake_root)
        if info.version is None or info.first_date is None:
            raise GoldCoverageError(f"{name}: table is empty or missing; build gold features first")
        # the peer graph is a snapshot table: a snapshot at or before start is enough
        first_needed = start if name != "gold.peer_graph" else None
        if first_needed is not None and info.first_date > first_needed:
            raise GoldCoverageError(
                f"{name}: requested range starts {start.isoformat()} but the table starts "
                f"{info.first_date.isoformat()} (holds {info.first_date}..{info.last_date})")
        if end is not None and name != "gold.peer_graph" and info.last_date < end:
            raise GoldCoverageError(
                f"{name}: requested range ends {end.isoformat()} but the table ends "
                f"{info.last_date.isoformat()} (holds {info.first_date}..{info.last_date})")
        if start is not None and name == "gold.peer_graph" and info.first_date > (end or start):
            raise GoldCoverageError(
                f"{name}: no snapshot at or before {(end or start).isoformat()} "
                f"(first snapshot {info.first_date.isoformat()})")
        out[name] = {"first": info.first_date.isoformat(), "last": info.last_date.isoformat(),
                     "dates": info.dates, "version": info.version}
    return out


def _index(values: pa.ChunkedArray, universe: np.ndarray) -> np.ndarray:
    return np.searchsorted(universe, values.to_numpy(zero_copy_only=False))


def load_panel(start: dt.date | None = None, end: dt.date | None = None,
               feature_columns: Sequence[str] | None = None,
               lake_root: str | None = None, check: bool = True) -> Panel:
    """Read features and labels for ``[start, end]`` into a ``Panel``.

    Raises ``GoldCoverageError`` when (with ``check``) the tables do not cover the range,
    when no feature rows fall in it, or a requested feature column is not in gold.features.
    """
    if check:
        check_gold_range(start, end, lake_root, tables=("gold.features", "gold.labels"))
    cols = list(feature_columns) if feature_columns else default_feature_columns()
    known = set(catalog.table("gold.features").column_names)
    unknown = [c for c in cols if c not in known]
    if unknown:
        raise GoldCoverageError(f"gold.features: no column(s) {unknown}")
    feats = deltars.read_table("gold.features", start, end, ["date", "code", *cols], lake_root)
    if feats.num_rows == 0:
        raise GoldCoverageError(f"gold.features: no rows in {start}..{end}")
    label_cols = [f"fwd_ret_{h}d_dm" for h in HORIZONS]
    labels = deltars.read_table("gold.labels", start, end, ["date", "code", *label_cols],
                                lake_root)
    days = np.unique(feats.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]"))
    codes = np.unique(np.asarray(feats.column("code").to_pylist(), dtype=object).astype(str))
    D, S, F = len(days), len(codes), len(cols)
    di = _index(pc.cast(feats.column("date"), pa.date32()), days.astype("datetime64[D]"))
    si = np.searchsorted(codes, np.asarray(feats.column("code").to_pylist(), dtype=str))
    x = np.zeros((D, S, F), np.float32)
    observed = np.zeros((D, S, F), bool)
    for f, c in enumerate(cols):
        v = feats.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(v)
        x[di[ok], si[ok], f] = v[ok]
        observed[di, si, f] = ok
    listed = np.zeros((D, S), bool)
    listed[di, si] = True
    y = np.zeros((D, S, len(HORIZONS)), np.float32)
    y_ok = np.zeros_like(y, bool)
    ld = labels.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    lc = np.asarray(labels.column("code").to_pylist(), dtype=str)
    ldi = np.searchsorted(days, ld)
    lsi = np.searchsorted(codes, lc)
    keep = (ldi < D) & (lsi < S)
    keep[keep] &= (days[ldi[keep]] == ld[keep]) & (codes[lsi[keep]] == lc[keep])
    for h, c in enumerate(label_cols):
        v = labels.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
        ok = keep & np.isfinite(v)
        y[ldi[ok], lsi[ok], h] = v[ok]
        y_ok[ldi[ok], lsi[ok], h] = True
    y_ok &= listed[:, :, None]
    log.info("panel: %d days x %d stocks x %d features (%.0f MB)", D, S, F, x.nbytes / 2**20)
    return Panel([d.item() for d in days], codes.tolist(), cols, x, observed, y, y_ok, listed)
