"""A code's series and the window kernels every per-code feature group uses (pure numpy).

A bucket of codes arrives as long rows sorted by ``(code, date)``. ``CodePanel`` lays them
out twice, one row per code, time along the last axis:

* the **rows** view: every row the build read for the code (halted days included), the
  clock of the trailing returns and the market-relative sums;
* the **series** view: the code's *traded* rows only (``is_traded`` and adjusted OHLC):
  halts and the 2020-10-01 outage are skipped, not treated as zero returns, and their
  rows get null series features.

Each kernel computes position ``t`` from positions ``<= t`` of its own code only, with a
fixed order of operations (sums run oldest first, one vectorized step per window offset):
a value does not depend on which other codes share the panel, how long the panel is or
where the read began, so a daily run reproduces a full rebuild bit for bit.

A window of ``n`` series rows is *full* when ``n`` rows exist and the oldest lies within
``LOOKBACK`` trading days (``_tidx``) of the current one; a window feature is null
otherwise, so a build that reads exactly the look-back computes what a rebuild does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spark_jobs.features.sessions import LOOKBACK

#: the adjusted bar columns a traded row must have
BAR_COLUMNS = ("adj_open", "adj_high", "adj_low", "adj_close")


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """``x`` moved ``k >= 1`` positions later along the last axis (NaN first)."""
    out = np.full(x.shape, np.nan)
    if k < x.shape[-1]:
        out[..., k:] = x[..., :-k]
    return out


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last ``n`` positions (NaN if any is NaN or fewer than ``n`` exist)."""
    out = np.full(x.shape, np.nan)
    width = x.shape[-1] - n + 1
    if width <= 0:
        return out
    acc = x[..., :width].astype(float, copy=True)
    for k in range(1, n):
        acc += x[..., k : k + width]
    out[..., n - 1 :] = acc
    return out


def trailing_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last ``n`` positions, over fewer at the start (the first ``n - 1``)."""
    padded = np.concatenate([np.zeros((*x.shape[:-1], n - 1)), x], axis=-1)
    return rolling_sum(padded, n)[..., n - 1 :]


def rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last ``n`` positions."""
    return rolling_sum(x, n) / n


def rolling_std(x: np.ndarray, n: int, ddof: int) -> np.ndarray:
    """Standard deviation of the last ``n`` positions (two passes: mean, then squared
    deviations from it), ``ddof`` 0 (population) or 1 (sample)."""
    out = np.full(x.shape, np.nan)
    width = x.shape[-1] - n + 1
    if width <= 0:
        return out
    mean = rolling_mean(x, n)[..., n - 1 :]
    acc = np.zeros(mean.shape)
    for k in range(n):
        d = x[..., k : k + width] - mean
        acc += d * d
    out[..., n - 1 :] = np.sqrt(acc / (n - ddof))
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    """Maximum of the last ``n`` positions (NaN if any is NaN)."""
    return _rolling_extreme(x, n, np.max)


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    """Minimum of the last ``n`` positions (NaN if any is NaN)."""
    return _rolling_extreme(x, n, np.min)


def _rolling_extreme(x: np.ndarray, n: int, how) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    if x.shape[-1] >= n:
        out[..., n - 1 :] = how(np.lib.stride_tricks.sliding_window_view(x, n, axis=-1), axis=-1)
    return out


def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b``, NaN where ``b`` is 0 or NaN."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b != 0, a / b, np.nan)


def log(x: np.ndarray) -> np.ndarray:
    """Natural log, NaN where ``x <= 0`` or NaN."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)


@dataclass
class CodePanel:
    """A bucket of codes' rows (sorted by ``code, date``) as per-code panels.

    ``row_code``/``row_pos`` place long row ``i`` at ``[row_code[i], row_pos[i]]`` of the
    rows view; ``traded`` marks the rows of the series view, placed at
    ``[row_code[i], series_pos[i]]``. ``tidx`` is the series view's trading-day index.
    """

    row_code: np.ndarray
    row_pos: np.ndarray
    traded: np.ndarray
    series_pos: np.ndarray
    n_codes: int
    n_rows: int
    n_series: int
    tidx: np.ndarray

    @classmethod
    def from_rows(cls, codes: np.ndarray, tidx: np.ndarray, traded: np.ndarray) -> CodePanel:
        """``codes``/``tidx``/``traded`` of long rows sorted by ``(code, date)``."""
        n = len(codes)
        new = np.r_[True, codes[1:] != codes[:-1]] if n else np.zeros(0, bool)
        row_code = np.cumsum(new) - 1
        starts = np.flatnonzero(new)
        row_pos = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
        cum = np.cumsum(traded)
        before = np.repeat(np.r_[0, cum][starts], np.diff(np.r_[starts, n]))
        series_pos = np.where(traded, cum - before - 1, -1)
        n_codes = len(starts)
        panel = cls(row_code, row_pos, traded, series_pos, n_codes,
                    int(row_pos.max()) + 1 if n else 0,
                    int(series_pos.max()) + 1 if traded.any() else 0, np.empty(0))
        panel.tidx = panel.series(tidx.astype(float))
        return panel

    def rows(self, values: np.ndarray) -> np.ndarray:
        """Long ``values`` → rows view (``n_codes × n_rows``), NaN after each code's end."""
        out = np.full((self.n_codes, self.n_rows), np.nan)
        out[self.row_code, self.row_pos] = values
        return out

    def series(self, values: np.ndarray) -> np.ndarray:
        """Long ``values`` of the traded rows → series view, NaN after each code's end."""
        out = np.full((self.n_codes, max(self.n_series, 1)), np.nan)
        t = self.traded
        out[self.row_code[t], self.series_pos[t]] = values[t]
        return out

    def from_rows_view(self, panel: np.ndarray) -> np.ndarray:
        """Rows view → long values."""
        return panel[self.row_code, self.row_pos]

    def from_series_view(self, panel: np.ndarray) -> np.ndarray:
        """Series view → long values, NaN on rows outside the series."""
        out = np.full(len(self.row_code), np.nan)
        t = self.traded
        out[t] = panel[self.row_code[t], self.series_pos[t]]
        return out

    def full(self, n: int) -> np.ndarray:
        """Series view: the last ``n`` series rows exist and lie within ``LOOKBACK``
        trading days (module docstring)."""
        first = self.tidx if n == 1 else shift(self.tidx, n - 1)
        with np.errstate(invalid="ignore"):
            return first >= self.tidx - (LOOKBACK - 1)


def trailing_returns(close: np.ndarray, horizons) -> dict[int, np.ndarray]:
    """Rows view: ``{n: close_t / close*_{t-n} - 1}`` where ``close*`` is the last non-null
    close at or before a row (a halt does not wipe out the next week's returns); NaN
    where ``close_t`` is NaN or no close exists at or before ``t - n``."""
    pos = np.where(np.isnan(close), -1, np.arange(close.shape[-1]))
    last = np.maximum.accumulate(pos, axis=-1)
    filled = np.where(last >= 0, np.take_along_axis(close, np.maximum(last, 0), axis=-1), np.nan)
    return {n: close / shift(filled, n) - 1 for n in horizons}
