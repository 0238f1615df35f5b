"""Technical indicators of ``spark_jobs.features.technical`` against the TA-Lib package.

The reference is TA-Lib itself (``talib``, the PyPI wheel with the bundled C library),
called on each code's *traded* rows as numpy arrays — not the project's numpy port.

* Series of at most ``WARMUP`` rows are one seeding epoch: every indicator must equal
  TA-Lib on the whole series within 1e-6 relative, and be null exactly where TA-Lib is
  still warming up.
* A longer series is epoch-seeded (module docstring of ``technical``): each row must equal
  TA-Lib run on the series that starts ``WARMUP`` trading days before its epoch, and the
  short-memory indicators must also equal TA-Lib on the whole history.
* A halted day (no trade) is skipped, not treated as a zero return, and its row is null.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import talib

from gogooku3.jpx.calendar import offline_trading_days
from spark_jobs.features import market as market_group
from spark_jobs.features import series, technical
from spark_jobs.features.sessions import trading_index

RTOL, ATOL = 1e-6, 1e-9
SHORT = ("A0001", "A0002", "A0003")  # 190 traded rows: one seeding epoch
HALTED = "A0004"  # 190 rows with a halted day
LONG = "A0005"  # 430 rows: several epochs
HALT_AT = 100
DAYS = offline_trading_days(dt.date(2023, 1, 4), dt.date(2025, 1, 31))


def _bars(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A random walk in whole yen (ties in closes happen), OHLC consistent, volume > 0."""
    close = np.round(300 * np.exp(np.cumsum(rng.normal(0, 0.02, n))))
    open_ = np.round(close * np.exp(rng.normal(0, 0.01, n)))
    high = np.maximum(open_, close) + np.round(rng.uniform(0, 6, n))
    low = np.maximum(np.minimum(open_, close) - np.round(rng.uniform(0, 6, n)), 1.0)
    vol = np.round(rng.lognormal(10, 0.5, n))
    return {"adj_open": open_, "adj_high": high, "adj_low": low, "adj_close": close,
            "adj_volume": vol}


def _market() -> pd.DataFrame:
    rng = np.random.default_rng(20240601)
    parts = []
    for code, n in [*[(c, 190) for c in SHORT], (HALTED, 190), (LONG, 430)]:
        bars = _bars(rng, n)
        start = len(DAYS) - n
        pdf = pd.DataFrame({"date": DAYS[start:], "code": code, **bars, "is_traded": True})
        if code == HALTED:
            pdf.loc[HALT_AT, ["adj_open", "adj_high", "adj_low", "adj_close"]] = np.nan
            pdf.loc[HALT_AT, ["adj_volume", "is_traded"]] = (0.0, False)
        parts.append(pdf)
    return pd.concat(parts, ignore_index=True)


def _obv_z(c: np.ndarray, v: np.ndarray, n: int = 20) -> np.ndarray:
    obv = pd.Series(talib.OBV(c, v))
    roll = obv.rolling(n)
    sd = roll.std(ddof=0)
    return ((obv - roll.mean()) / sd.where(sd > 0)).to_numpy()


def talib_reference(b: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every technical feature from TA-Lib on one contiguous traded series."""
    o, h, lo, c, v = (b[k].to_numpy(dtype=float) for k in
                      ("adj_open", "adj_high", "adj_low", "adj_close", "adj_volume"))
    ref = {}
    for n in technical.MA_WINDOWS:
        ref[f"sma_gap_{n}"] = c / talib.SMA(c, n) - 1
        ref[f"ema_gap_{n}"] = c / talib.EMA(c, n) - 1
    line, sig, hist = talib.MACD(c, 12, 26, 9)
    ref["macd_12_26_9"], ref["macd_signal_12_26_9"], ref["macd_hist_12_26_9"] = (
        line / c, sig / c, hist / c)
    ref["rsi_2"], ref["rsi_14"] = talib.RSI(c, 2), talib.RSI(c, 14)
    upper, mid, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    ref["bb_pctb_20"] = (c - lower) / (upper - lower)
    ref["bb_width_20"] = (upper - lower) / mid
    ref["atr_14"] = talib.ATR(h, lo, c, 14) / c
    ref["adx_14"] = talib.ADX(h, lo, c, 14)
    # STOCHF aligns both outputs to %D's warm-up; %K alone is STOCHF with a 1-day %D
    ref["stoch_k_14"] = talib.STOCHF(h, lo, c, 14, 1, 0)[0]
    ref["stoch_d_14"] = talib.STOCHF(h, lo, c, 14, 3, 0)[1]
    ref["willr_14"] = talib.WILLR(h, lo, c, 14)
    ref["cci_20"] = talib.CCI(h, lo, c, 20)
    ref["mfi_14"] = talib.MFI(h, lo, c, v, 14)
    ref["obv_z_20"] = _obv_z(c, v)
    ref["roc_12"] = talib.ROC(c, 12)
    assert set(ref) == set(technical.FEATURES)
    return ref


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    return _market()


@pytest.fixture(scope="module")
def computed(market) -> pd.DataFrame:
    """The build's per-code kernel (what its grouped pass runs on each bucket) on all codes
    at once; every row is in range."""
    rows = market.assign(volume=market["adj_volume"], turnover=market["adj_close"] * 1e3,
                         upper_limit_hit=False, lower_limit_hit=False,
                         **{k: np.nan for k in market_group.INDEX_COLUMNS})
    out = pd.DataFrame(series.code_columns(rows.sample(frac=1.0, random_state=3), DAYS[0], DAYS[0]))
    out = out.merge(market[["date", "code", "is_traded"]], on=["date", "code"])
    return out.sort_values(["code", "date"]).reset_index(drop=True)


def _traded(df: pd.DataFrame, code: str) -> pd.DataFrame:
    rows = df[(df["code"] == code) & df["is_traded"]]
    return rows.sort_values("date").reset_index(drop=True)


def _assert_matches(got, want, what: str) -> int:
    """Same nulls, same values where both exist; returns how many values were compared."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want),
                                  err_msg=f"{what}: null where TA-Lib is warming up")
    both = ~np.isnan(got)
    np.testing.assert_allclose(got[both], want[both], rtol=RTOL, atol=ATOL, err_msg=what)
    return int(both.sum())


@pytest.mark.parametrize("code", [*SHORT, HALTED])
def test_every_indicator_equals_talib_including_warm_up(market, computed, code):
    ref = talib_reference(_traded(market, code))
    got = _traded(computed, code)
    for name in technical.FEATURES:
        assert _assert_matches(got[name], ref[name], f"{code} {name}") > 50, name


def test_a_halted_day_is_null_and_skipped_not_a_zero_return(market, computed):
    rows = computed[computed["code"] == HALTED].sort_values("date").reset_index(drop=True)
    assert rows.loc[HALT_AT, technical.FEATURES].isna().all()
    # the day after the halt is computed over the series without it: roc_12 there compares
    # with the 12th traded row before, which lies 13 calendar rows back
    after = rows.loc[HALT_AT + 1]
    c = market[market["code"] == HALTED].reset_index(drop=True)["adj_close"]
    assert after["roc_12"] == pytest.approx(100 * (c[HALT_AT + 1] / c[HALT_AT - 12] - 1), rel=1e-9)


def test_long_series_equals_talib_on_each_epochs_seeding_window(market, computed):
    series = _traded(market, LONG)
    got = _traded(computed, LONG)
    tidx = np.array([trading_index(list(series["date"]))[d] for d in series["date"]])
    epochs = tidx // technical.EPOCH
    assert len(np.unique(epochs)) >= 6
    compared = dict.fromkeys(technical.RECURSIVE, 0)
    for b in np.unique(epochs):
        rows = np.flatnonzero(epochs == b)
        first = np.searchsorted(tidx, b * technical.EPOCH - technical.WARMUP)
        ref = talib_reference(series.iloc[first: rows[-1] + 1])
        for name in technical.RECURSIVE:
            compared[name] += _assert_matches(got.loc[rows, name], ref[name][rows - first],
                                              f"epoch {b} {name}")
    assert min(compared.values()) > 250, compared


@pytest.mark.parametrize("name", ["ema_gap_5", "ema_gap_10", "ema_gap_20",
                                  "rsi_2", "rsi_14", "atr_14", "obv_z_20", "sma_gap_120",
                                  "cci_20"])
def test_short_memory_indicators_equal_talib_on_the_whole_history(market, computed, name):
    """Seeding 200 rows back forgets the seed to below 1e-6 for these (``technical``'s
    docstring lists the longer-memory ones: EMA-60/120, MACD, ADX)."""
    ref = talib_reference(_traded(market, LONG))[name]
    got = _traded(computed, LONG)[name].to_numpy(dtype=float)
    assert _assert_matches(got[technical.WARMUP:], ref[technical.WARMUP:], name) > 200


@pytest.mark.parametrize("cut", [0, 5, 61, 250, 429, 430])
def test_since_computes_exactly_the_rows_from_that_date(market, cut):
    """``epoch_indicators(since=…)`` (what a build uses to skip its look-back's epochs)
    returns the rows dated ``>= since`` with the values of the whole-series call."""
    rows = _traded(market, LONG).copy()
    rows["_tidx"] = rows["date"].map(trading_index(list(rows["date"])))
    full = technical.epoch_indicators(rows)
    since = DAYS[-1] + dt.timedelta(days=1) if cut == len(rows) else rows["date"].iloc[cut]
    part = technical.epoch_indicators(rows, since)
    want = full[full["date"] >= since].reset_index(drop=True)
    assert len(part) == len(rows) - cut
    pd.testing.assert_frame_equal(part.reset_index(drop=True), want, check_exact=True)


def test_a_codes_values_do_not_depend_on_the_codes_sharing_its_call(market):
    """The UDF hands ``epoch_indicators`` a bucket of codes as one panel per epoch: each
    code must get bit for bit what a call with that code alone gives (shuffled input)."""
    traded = market[market["is_traded"]].copy()
    traded["_tidx"] = traded["date"].map(trading_index(sorted(set(traded["date"]))))
    since = DAYS[-200]
    together = technical.epoch_indicators(traded.sample(frac=1.0, random_state=5), since)
    for code, rows in traded.groupby("code"):
        alone = technical.epoch_indicators(rows, since).reset_index(drop=True)
        got = together[together["code"] == code].reset_index(drop=True)
        assert len(alone) > 50
        pd.testing.assert_frame_equal(got, alone, check_exact=True, obj=code)
