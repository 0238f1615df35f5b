"""A seeded, vectorized simulation of the TSE equity market in J-Quants v2 shapes.

``simulate_market(MarketConfig(...))`` returns a ``SimulatedMarket`` whose frames use the
official v2 column names (``jquantsapi.constants``: ``EQ_BARS_DAILY_COLUMNS_V2`` …), on
the real JPX trading calendar (offline XTKS). Deterministic per seed, in one process or
across processes (no ``hash()``, no wall clock).

Model (one numpy step per trading day, vectorized over stocks):

* returns ``r[t,i] = beta_i·m_t + s[t,sector_i] + c[t,cluster_i] + sigma[t,i]·z[t,i] +
  alpha[t,i]`` with a TOPIX-like market factor ``m``, 33 sector factors, latent-cluster
  factors, GARCH(1,1) idiosyncratic volatility and Student-t(4) innovations;
* **planted signal** ``alpha[t,i]``, the expected return from the close of ``t-1`` to the
  close of ``t``, is a function of information up to the close of ``t-1``: short-term
  reversal of the previous day's idiosyncratic return, 20-day momentum, post-earnings
  drift for 20 days after a statement's effective date (``sim_fundamentals``), and a
  lead–lag term — the previous-day excess return of the stock's latent cluster (so a
  correlation graph genuinely helps);
* raw prices on TSE ticks, clipped to the daily price limits (``UL``/``LL`` flags "1" when
  a limit was touched); splits/reverse splits (``AdjFactor`` on the effective date, raw
  prices jump, ``Adj*`` backward-adjusted and rounded to one decimal as in the API);
  no-trade days (a row with null OHLC/volume: halts, and every stock on the 2020-10-01
  exchange outage); listings and delistings (delisted codes simply vanish).

**Oracle.** ``oracle[h]`` (h in 1, 2, 3, 5, 10) is the mean over days of the daily
Spearman RankIC between the planted expected return known at the close of ``t`` (next
day's alpha plus its persistent part — momentum and drift — times ``h-1``) and the
realized close-to-close log return ``t→t+h``; ``oracle_daily`` holds the daily values.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gogooku3.jpx.calendar import OUTAGE_DAYS, holdiv_rows, offline_trading_days
from gogooku3.jpx.price_limits import limit_prices
from gogooku3.market.sim_fundamentals import (
    draw_disclosures,
    fins_frame,
    investor_frame,
    margin_frame,
)
from gogooku3.market.sim_universe import (
    SECTOR17_NAMES,
    SECTOR33,
    draw_universe,
    master_frame,
    round_to_tick,
)

__all__ = ["HORIZONS", "MarketConfig", "PlantedComponents", "PlantedSignal", "SECTOR17_NAMES",
           "SECTOR33", "SimError", "SimulatedMarket", "mean_rank_ic", "daily_rank_ic",
           "round_to_tick", "simulate_market"]

log = logging.getLogger(__name__)

HORIZONS = (1, 2, 3, 5, 10)
_WARMUP = 30  # days skipped by the oracle (momentum needs 21)


class SimError(ValueError):
    """A market configuration that cannot be simulated."""


@dataclass(frozen=True)
class PlantedSignal:
    """Daily coefficients of the predictable return components (in return units)."""

    reversal: float = 0.06          # × previous day's idiosyncratic return, sign flipped
    momentum: float = 0.004         # × 20-day cumulative return (t-21..t-2)
    earnings_drift: float = 0.0008  # × standardized surprise, for 20 trade days
    lead_lag: float = 0.10          # × previous day's excess return of the latent cluster


@dataclass(frozen=True)
class MarketConfig:
    """What to simulate. ``start``/``end`` are clipped to JPX trading days."""

    stocks: int = 500
    start: dt.date = dt.date(2023, 1, 4)
    end: dt.date = dt.date(2025, 12, 30)
    seed: int = 7
    clusters: int = 25
    signal: PlantedSignal = field(default_factory=PlantedSignal)
    no_trade_rate: float = 0.002
    split_rate: float = 0.02      # share of stocks with one split/reverse split
    listing_rate: float = 0.05    # share of stocks listed after start
    delisting_rate: float = 0.03  # share of stocks delisted before end


@dataclass
class PlantedComponents:
    """The planted signal, aligned to the date its information is known.

    Arrays are ``[T days, N codes]`` float32 in ``market.days`` x ``codes`` order; row ``t``
    is the expected return from the close of ``days[t]`` to the next close (the last row is
    zero: no return after the last day is simulated). A perfect model
    predicts ``total()``. ``effective`` is a frame of statements (``Code``, ``DiscDate``,
    ``DiscTime``, ``EffDate``): from ``EffDate`` on, the earnings drift is in the signal.
    """

    codes: list[str]
    reversal: np.ndarray
    momentum: np.ndarray
    earnings_drift: np.ndarray
    lead_lag: np.ndarray
    effective: pd.DataFrame

    def total(self) -> np.ndarray:
        """Sum of the components: the next-day expected return known at each close."""
        return self.reversal + self.momentum + self.earnings_drift + self.lead_lag

    def frame(self, days: list[dt.date], listed: np.ndarray | None = None) -> pd.DataFrame:
        """Long frame ``Date, Code, reversal, momentum, earnings_drift, lead_lag, alpha``."""
        tt, ii = np.nonzero(listed if listed is not None else np.ones(self.reversal.shape, bool))
        cols = {k: getattr(self, k)[tt, ii]
                for k in ("reversal", "momentum", "earnings_drift", "lead_lag")}
        return pd.DataFrame({"Date": np.array([d.isoformat() for d in days], dtype=object)[tt],
                             "Code": np.array(self.codes, dtype=object)[ii], **cols,
                             "alpha": self.total()[tt, ii]})


@dataclass
class SimulatedMarket:
    """The simulated market: per-endpoint frames in J-Quants v2 column names.

    ``bars`` and ``master`` are sorted by ``Date, Code``; ``bars_for_date`` is a slice.
    """

    config: MarketConfig
    days: list[dt.date]
    master: pd.DataFrame          # /equities/master: one row per (Date, Code) listed that day
    bars: pd.DataFrame            # /equities/bars/daily
    topix: pd.DataFrame           # /indices/bars/daily/topix
    fins: pd.DataFrame            # /fins/summary (values as strings, like the API)
    investor_types: pd.DataFrame  # /equities/investor-types
    margin: pd.DataFrame          # /markets/margin-interest
    oracle: dict[int, float]      # horizon -> mean daily RankIC of the planted signal
    oracle_daily: pd.DataFrame    # Date x horizon ("1d".."10d") daily oracle RankIC
    clusters: dict[str, int]      # latent cluster of each code (ground truth for graphs)
    planted: PlantedComponents
    _bar_slices: dict[dt.date, slice] = field(default_factory=dict, repr=False)

    def bars_for_date(self, day: dt.date) -> pd.DataFrame:
        """All codes' bars of one trade date (a slice: O(rows of that date))."""
        sl = self._bar_slices.get(day)
        return self.bars.iloc[sl] if sl is not None else self.bars.iloc[0:0]

    @property
    def codes(self) -> list[str]:
        return sorted(self.clusters)

    def calendar_rows(self, lo: dt.date, hi: dt.date) -> list[dict[str, str]]:
        """``/markets/calendar`` rows for ``[lo, hi]``: the offline JPX calendar, with the
        simulated trading days (outage days included) as business days ("1")."""
        trading = {d.isoformat() for d in self.days}
        return [{"Date": r["Date"], "HolDiv": "1" if r["Date"] in trading else r["HolDiv"]}
                for r in holdiv_rows(lo, hi)]


def daily_rank_ic(signal: np.ndarray, fwd: np.ndarray, min_names: int = 10) -> np.ndarray:
    """Per-row Spearman correlation (average ranks for ties) of ``[T, N]`` arrays over the
    entries finite in both; NaN for rows with fewer than ``min_names`` such entries."""
    ok = np.isfinite(signal) & np.isfinite(fwd)
    rs = pd.DataFrame(np.where(ok, signal, np.nan)).rank(axis=1).to_numpy()
    rf = pd.DataFrame(np.where(ok, fwd, np.nan)).rank(axis=1).to_numpy()
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rs = rs - np.nanmean(rs, axis=1, keepdims=True)
        rf = rf - np.nanmean(rf, axis=1, keepdims=True)
        den = np.sqrt(np.nansum(rs * rs, axis=1) * np.nansum(rf * rf, axis=1))
        ic = np.nansum(rs * rf, axis=1) / den
    return np.where((n >= min_names) & (den > 0), ic, np.nan)


def mean_rank_ic(signal: np.ndarray, fwd: np.ndarray) -> float:
    """Mean over rows of ``daily_rank_ic`` (NaN when no row qualifies)."""
    ic = daily_rank_ic(signal, fwd)
    return float(np.nanmean(ic)) if np.isfinite(ic).any() else float("nan")


@dataclass
class _Returns:
    """Step 1's output: market factor, daily log returns, idiosyncratic parts, the planted
    components (row t: known at the close of t-1) and each stock's base volatility."""

    mkt: np.ndarray
    r: np.ndarray
    comp: dict[str, np.ndarray]
    base_vol: np.ndarray


@dataclass
class _Prices:
    """Step 2's output: raw OHLC (NaN when not traded), limit flags, log returns realized
    against the base price, and AdjFactor per day and stock."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    realized: np.ndarray
    adj_factor: np.ndarray


def _simulate_returns(cfg: MarketConfig, T: int, u, disc, rng: np.random.Generator) -> _Returns:
    """Factor returns plus GARCH(1,1) idiosyncratic noise plus the planted signal, whose
    component for day t uses only information up to the close of t-1."""
    N = cfg.stocks
    mkt = rng.standard_t(5, size=T) * 0.009 + 0.0003
    sec = rng.standard_t(5, size=(T, len(SECTOR33))) * 0.006
    clus = rng.normal(0, 0.008, size=(T, cfg.clusters))
    z = rng.standard_t(4, size=(T, N)) / np.sqrt(2.0)
    base_vol = rng.uniform(0.010, 0.025, size=N)
    sig = cfg.signal
    comp = {k: np.zeros((T, N)) for k in ("reversal", "momentum", "earnings_drift", "lead_lag")}
    r = np.zeros((T, N))
    idio = np.zeros((T, N))
    eff_order = np.argsort(disc.effective, kind="stable")
    eff_bounds = np.searchsorted(disc.effective[eff_order], np.arange(T + 1))
    cluster_size = np.maximum(np.bincount(u.cluster, minlength=cfg.clusters), 1)
    drift_until = np.full(N, -1)
    drift_size = np.zeros(N)
    cum20 = np.zeros(N)
    h = base_vol ** 2
    for t in range(T):
        if t > 0:  # alpha[t] from information up to the close of t-1
            clus_prev = np.bincount(u.cluster, weights=r[t - 1], minlength=cfg.clusters) / cluster_size
            comp["reversal"][t] = -sig.reversal * idio[t - 1]
            comp["lead_lag"][t] = sig.lead_lag * (clus_prev[u.cluster] - r[t - 1].mean())
            comp["momentum"][t] = sig.momentum * cum20
            comp["earnings_drift"][t] = np.where(t <= drift_until, drift_size, 0.0)
        ev = eff_order[eff_bounds[t]:eff_bounds[t + 1]]  # statements usable from day t on
        drift_until[disc.stock[ev]] = t + 20
        drift_size[disc.stock[ev]] = sig.earnings_drift * disc.surprise[ev]
        alpha_t = sum(c[t] for c in comp.values())
        eps = np.sqrt(h) * z[t]
        idio[t] = eps
        r[t] = u.beta * mkt[t] + sec[t, u.sector] + clus[t, u.cluster] + eps + alpha_t
        h = base_vol ** 2 * 0.05 + 0.10 * eps ** 2 + 0.85 * h
        if t >= 21:
            cum20 = r[t - 20:t].sum(axis=0)  # for alpha[t+1]: returns t-20..t-1
    return _Returns(mkt, r, comp, base_vol)


def _simulate_prices(cfg: MarketConfig, days: list[dt.date], ret: _Returns,
                     rng: np.random.Generator) -> _Prices:
    """Raw prices on TSE ticks within the daily price limits, splits and reverse splits
    (AdjFactor on the effective date), and no-trade days (halts, the outage)."""
    T, N = len(days), cfg.stocks
    p0 = round_to_tick(np.exp(rng.normal(np.log(1500), 0.9, size=N)).clip(50, 80_000))
    no_trade = rng.random((T, N)) < cfg.no_trade_rate
    for t, d in enumerate(days):
        if d in OUTAGE_DAYS:
            no_trade[t] = True
    split_stock = rng.random(N) < cfg.split_rate
    split_day = rng.integers(T // 5, T - 5, size=N)
    split_ratio = rng.choice([2.0, 3.0, 5.0, 0.5], size=N, p=[0.5, 0.2, 0.15, 0.15])
    adj_factor = np.ones((T, N))
    adj_factor[split_day[split_stock], np.flatnonzero(split_stock)] = 1.0 / split_ratio[split_stock]
    gap_z = rng.normal(0, 1, size=(T, N))
    wick = np.abs(rng.normal(0, 1, size=(T, 2, N)))
    OP, H, L, C = (np.full((T, N), np.nan) for _ in range(4))
    UL = np.zeros((T, N), dtype=bool)
    LL = np.zeros((T, N), dtype=bool)
    realized = np.zeros((T, N))
    last = p0.copy()
    vol = np.maximum(ret.base_vol, 1e-3)
    r = ret.r
    for t in range(T):
        base = last * adj_factor[t]  # ex-rights base price on a split day
        lo_lim, up_lim = limit_prices(base)
        close = round_to_tick(np.clip(base * np.exp(r[t]), lo_lim, up_lim))
        open_ = round_to_tick(np.clip(base * np.exp(0.4 * r[t] + 0.3 * vol * gap_z[t]), lo_lim, up_lim))
        high = round_to_tick(np.minimum(np.maximum(open_, close) * np.exp(0.5 * vol * wick[t, 0]), up_lim))
        low = round_to_tick(np.maximum(np.minimum(open_, close) * np.exp(-0.5 * vol * wick[t, 1]), lo_lim))
        # limit prices need not sit on the tick grid: rounding must not cross them
        close, open_, high, low = (np.clip(x, lo_lim, up_lim) for x in (close, open_, high, low))
        high = np.maximum(high, np.maximum(open_, close))
        low = np.minimum(low, np.minimum(open_, close))
        traded = ~no_trade[t]
        for out, val in ((C, close), (OP, open_), (H, high), (L, low)):
            out[t] = np.where(traded, val, np.nan)
        UL[t] = traded & (high >= up_lim)
        LL[t] = traded & (low <= lo_lim)
        realized[t] = np.where(traded, np.log(close / base), 0.0)
        last = np.where(traded, close, base)
    return _Prices(OP, H, L, C, UL, LL, realized, adj_factor)


def _simulate_volumes(px: _Prices, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(shares traded, turnover): larger on big moves, scaled by splits; turnover is about
    volume x typical price; NaN on no-trade days."""
    T, N = px.close.shape
    shares = np.exp(rng.normal(np.log(2e5), 1.0, size=N))
    vo = np.round(shares * np.exp(rng.normal(0, 0.4, size=(T, N))) * (1 + 20 * np.abs(px.realized))
                  * np.cumprod(1 / px.adj_factor, axis=0) / 100) * 100
    vo[np.isnan(px.close)] = np.nan
    va = np.round(vo * (px.high + px.low + px.close) / 3)
    return vo, va


def _oracle(comp: dict[str, np.ndarray], realized: np.ndarray, listed: np.ndarray,
            date_str: np.ndarray):
    """(oracle, oracle_daily, known): the planted expectation known at each close
    (``known``, row t = next day's components) scored against realized t -> t+h."""
    T, N = realized.shape
    log_close = np.where(listed, np.cumsum(realized, axis=0), np.nan)
    known = {k: np.vstack([v[1:], np.zeros((1, N))]) for k, v in comp.items()}
    total = sum(known.values())
    persistent = known["momentum"] + known["earnings_drift"]
    oracle, daily = {}, {}
    for hzn in HORIZONS:
        fwd = np.full((T, N), np.nan)
        fwd[:-hzn] = log_close[hzn:] - log_close[:-hzn]
        ic = daily_rank_ic((total + (hzn - 1) * persistent)[_WARMUP:T - hzn], fwd[_WARMUP:T - hzn])
        daily[f"{hzn}d"] = np.r_[np.full(_WARMUP, np.nan), ic, np.full(hzn, np.nan)]
        oracle[hzn] = float(np.nanmean(ic))
    return oracle, pd.DataFrame({"Date": date_str, **daily}), known


def _bars_frame(u, listed: np.ndarray, px: _Prices, vo: np.ndarray, va: np.ndarray,
                date_str: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``/equities/bars/daily`` rows in Date, Code order (without sorting), with the API's
    backward-adjusted ``Adj*`` columns rounded to one decimal; also the (day, stock)
    indices of the rows."""
    N = listed.shape[1]
    # backward cumulative adjustment as the API publishes it: product of all later factors
    later = np.cumprod(px.adj_factor[::-1], axis=0)[::-1]
    back = np.vstack([later[1:], np.ones((1, N))])
    perm = np.argsort(np.array(u.codes))
    tt, jj = np.nonzero(listed[:, perm])
    ii = perm[jj]
    code_obj = np.array(u.codes, dtype=object)
    OP, H, L, C = px.open, px.high, px.low, px.close
    bars = pd.DataFrame({
        "Date": date_str[tt], "Code": code_obj[ii],
        "O": OP[tt, ii], "H": H[tt, ii], "L": L[tt, ii], "C": C[tt, ii],
        "UL": np.array(["0", "1"], dtype=object)[px.upper[tt, ii].astype(int)],
        "LL": np.array(["0", "1"], dtype=object)[px.lower[tt, ii].astype(int)],
        "Vo": vo[tt, ii], "Va": va[tt, ii], "AdjFactor": px.adj_factor[tt, ii],
        "AdjO": np.round(OP[tt, ii] * back[tt, ii], 1), "AdjH": np.round(H[tt, ii] * back[tt, ii], 1),
        "AdjL": np.round(L[tt, ii] * back[tt, ii], 1), "AdjC": np.round(C[tt, ii] * back[tt, ii], 1),
        "AdjVo": np.round(vo[tt, ii] / back[tt, ii]),
    })
    return bars, tt, ii


def _topix_frame(mkt: np.ndarray, date_str: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """``/indices/bars/daily/topix``: the market factor as an index level."""
    T = len(mkt)
    level = 2000 * np.exp(np.cumsum(mkt))
    t_open = level / np.exp(mkt) * np.exp(0.3 * mkt)
    return pd.DataFrame({
        "Date": date_str, "O": np.round(t_open, 2),
        "H": np.round(np.maximum(t_open, level) * (1 + np.abs(rng.normal(0, 0.003, T))), 2),
        "L": np.round(np.minimum(t_open, level) * (1 - np.abs(rng.normal(0, 0.003, T))), 2),
        "C": np.round(level, 2),
    })


def simulate_market(cfg: MarketConfig) -> SimulatedMarket:
    """Generate the market described by ``cfg`` (deterministic per ``cfg.seed``).

    Steps, in the order they draw from the one seeded generator: universe, disclosures,
    returns, prices, volumes, frames (TOPIX, statements, flows, margin).
    Raises ``SimError`` for fewer than 30 trading days or no stocks.
    """
    days = offline_trading_days(cfg.start, cfg.end)
    if len(days) < _WARMUP or cfg.stocks < 1:
        raise SimError(f"simulation needs >= {_WARMUP} trading days and >= 1 stock, got "
                       f"{len(days)} days in {cfg.start}..{cfg.end} and {cfg.stocks} stocks")
    rng = np.random.default_rng(cfg.seed)
    T, N = len(days), cfg.stocks
    u = draw_universe(N, days, cfg.clusters, cfg.listing_rate, cfg.delisting_rate, rng)
    listed = u.listed(T)
    disc = draw_disclosures(N, days, rng)
    ret = _simulate_returns(cfg, T, u, disc, rng)
    px = _simulate_prices(cfg, days, ret, rng)
    vo, va = _simulate_volumes(px, rng)
    date_str = np.array([d.isoformat() for d in days], dtype=object)
    oracle, oracle_daily, known = _oracle(ret.comp, px.realized, listed, date_str)

    bars, tt, ii = _bars_frame(u, listed, px, vo, va, date_str)
    bounds = np.searchsorted(tt, np.arange(T + 1))
    slices = {d: slice(int(bounds[t]), int(bounds[t + 1])) for t, d in enumerate(days)}
    master = master_frame(u, tt, ii, date_str)
    topix = _topix_frame(ret.mkt, date_str, rng)
    shares_out = 1e6 * rng.integers(10, 510, size=N)
    fins = fins_frame(disc, days, u.codes, listed, px.close, shares_out)
    investor = investor_frame(days, ret.mkt, rng)
    margin = margin_frame(days, u.codes, listed, vo, px.close, rng)
    code_obj = np.array(u.codes, dtype=object)
    effective = pd.DataFrame({
        "Code": code_obj[disc.stock], "DiscDate": date_str[disc.day], "DiscTime": disc.time,
        "EffDate": np.append(date_str, None)[disc.effective],
    })
    planted = PlantedComponents(u.codes, *(known[k].astype(np.float32) for k in
                                            ("reversal", "momentum", "earnings_drift", "lead_lag")),
                                effective=effective)
    log.info("simulated %d stocks x %d days (%d bar rows); oracle 1d RankIC %.3f",
             N, T, len(bars), oracle[1])
    return SimulatedMarket(cfg, days, master, bars, topix, fins, investor, margin, oracle,
                           oracle_daily, dict(zip(u.codes, u.cluster.tolist(), strict=True)),
                           planted, slices)
