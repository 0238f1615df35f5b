"""A seeded, vectorized simulation of the TSE equity market in J-Quants v2 shapes.

``simulate_market(MarketConfig(...))`` returns a ``SimulatedMarket`` whose frames use the
official v2 column names (``jquantsapi.constants``: ``EQ_BARS_DAILY_COLUMNS_V2`` …), on
the real JPX trading calendar. Deterministic per seed.

Model (one numpy step per trading day, vectorized over stocks):

* returns ``r[t,i] = beta_i·m_t + s[t,sector_i] + sigma[t,i]·z[t,i] + alpha[t,i]`` with a
  TOPIX-like market factor ``m``, 33 sector factors, GARCH(1,1) idiosyncratic volatility
  and Student-t(4) innovations;
* **planted signal** ``alpha[t,i]`` is known at the close of ``t-1``: short-term reversal
  of the previous day's idiosyncratic return, 20-day momentum, post-earnings drift after a
  disclosure's effective date, and a lead–lag term — the previous-day return of the
  stock's latent cluster (so a correlation graph genuinely helps);
* raw prices on TSE ticks, clipped to the daily price limits (``UL``/``LL`` flags "1" when
  a limit was touched); splits/reverse splits (``AdjFactor`` on the effective date, raw
  prices jump, ``Adj*`` columns backward-adjusted and rounded to one decimal as in the
  API); no-trade days (row with null OHLC/volume); listings and delistings;
* quarterly ``/fins/summary`` rows with ``DiscDate``/``DiscTime`` (some after the close:
  they count from the next trade date), weekly investor-type flows published the
  following week, weekly margin interest published two business days after its as-of.

**Oracle.** ``oracle`` holds, per horizon h in (1, 2, 3, 5, 10), the mean daily Spearman
RankIC between the planted expected return known at ``t`` (the next-day alpha plus the
persistent part times ``h-1``) and the realized forward return ``t→t+h`` — what a perfect
model of the planted components would score.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gogooku3.market.calendar import offline_trading_days, session_close
from gogooku3.quality.price_limits import limit_prices

log = logging.getLogger(__name__)

HORIZONS = (1, 2, 3, 5, 10)

SECTOR33 = [
    ("0050", "Fishery, Agriculture & Forestry", "1"), ("1050", "Mining", "2"),
    ("2050", "Construction", "3"), ("3050", "Foods", "1"), ("3100", "Textiles & Apparels", "4"),
    ("3150", "Pulp & Paper", "4"), ("3200", "Chemicals", "4"), ("3250", "Pharmaceutical", "5"),
    ("3300", "Oil & Coal Products", "2"), ("3350", "Rubber Products", "6"),
    ("3400", "Glass & Ceramics Products", "3"), ("3450", "Iron & Steel", "7"),
    ("3500", "Nonferrous Metals", "7"), ("3550", "Metal Products", "3"),
    ("3600", "Machinery", "8"), ("3650", "Electric Appliances", "9"),
    ("3700", "Transportation Equipment", "6"), ("3750", "Precision Instruments", "9"),
    ("3800", "Other Products", "10"), ("4050", "Electric Power & Gas", "11"),
    ("5050", "Land Transportation", "12"), ("5100", "Marine Transportation", "12"),
    ("5150", "Air Transportation", "12"), ("5200", "Warehousing & Harbor", "12"),
    ("5250", "Information & Communication", "10"), ("6050", "Wholesale Trade", "13"),
    ("6100", "Retail Trade", "14"), ("7050", "Banks", "15"),
    ("7100", "Securities & Commodity Futures", "16"), ("7150", "Insurance", "16"),
    ("7200", "Other Financing Business", "16"), ("8050", "Real Estate", "17"),
    ("9050", "Services", "10"),
]
SECTOR17_NAMES = {
    "1": "FOODS", "2": "ENERGY RESOURCES", "3": "CONSTRUCTION & MATERIALS",
    "4": "RAW MATERIALS & CHEMICALS", "5": "PHARMACEUTICAL", "6": "AUTOMOBILES",
    "7": "STEEL & NONFERROUS METALS", "8": "MACHINERY", "9": "ELECTRIC APPLIANCES & PRECISION",
    "10": "IT & SERVICES, OTHERS", "11": "ELECTRIC POWER & GAS", "12": "TRANSPORTATION & LOGISTICS",
    "13": "COMMERCIAL & WHOLESALE TRADE", "14": "RETAIL TRADE", "15": "BANKS",
    "16": "FINANCIALS (EX BANKS)", "17": "REAL ESTATE",
}
MARKETS = [("0111", "Prime"), ("0112", "Standard"), ("0113", "Growth")]
SCALE_CATS = ["TOPIX Core30", "TOPIX Large70", "TOPIX Mid400", "TOPIX Small 1", "TOPIX Small 2", "-"]
DISC_TIMES = ["11:30:00", "13:00:00", "14:00:00", "15:00:00", "15:30:00", "16:00:00", ""]
INVESTOR_SECTIONS = ["TSEPrime", "TSEStandard", "TSEGrowth"]

# TSE tick sizes for ordinary issues: (upper bound of price band, tick)
_TICKS = ((3_000, 1), (5_000, 5), (30_000, 10), (50_000, 50), (300_000, 100),
          (500_000, 500), (3_000_000, 1_000), (5_000_000, 5_000), (float("inf"), 10_000))
_TICK_UPPER = np.array([u for u, _ in _TICKS])
_TICK_SIZE = np.array([t for _, t in _TICKS], dtype=float)


def round_to_tick(price: np.ndarray) -> np.ndarray:
    """Round prices to the TSE tick of their band (NaN stays NaN)."""
    p = np.asarray(price, dtype=float)
    tick = _TICK_SIZE[np.searchsorted(_TICK_UPPER, np.nan_to_num(p), side="left").clip(0, len(_TICKS) - 1)]
    return np.maximum(np.round(p / tick) * tick, 1.0)


@dataclass(frozen=True)
class PlantedSignal:
    """Daily coefficients of the predictable return components (in return units)."""

    reversal: float = 0.06       # × previous day's idiosyncratic return, sign flipped
    momentum: float = 0.004      # × 20-day cumulative return (t-21..t-2)
    earnings_drift: float = 0.0008  # × standardized surprise, for 20 trade days
    lead_lag: float = 0.10       # × previous day's mean return of the latent cluster


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
class SimulatedMarket:
    """The simulated market: per-endpoint frames in J-Quants v2 column names."""

    config: MarketConfig
    days: list[dt.date]
    master: pd.DataFrame          # one row per (Date, Code) listed that day
    bars: pd.DataFrame            # /equities/bars/daily, sorted by Date, Code
    topix: pd.DataFrame           # /indices/bars/daily/topix
    fins: pd.DataFrame            # /fins/summary (values as strings, like the API)
    investor_types: pd.DataFrame  # /equities/investor-types
    margin: pd.DataFrame          # /markets/margin-interest
    oracle: dict[int, float]      # horizon -> mean daily RankIC of the planted signal
    clusters: dict[str, int]      # latent cluster of each code (ground truth for graphs)
    _bar_slices: dict[dt.date, slice] = field(default_factory=dict, repr=False)

    def bars_for_date(self, day: dt.date) -> pd.DataFrame:
        """All codes' bars of one trade date (O(rows of that date))."""
        sl = self._bar_slices.get(day)
        return self.bars.iloc[sl] if sl is not None else self.bars.iloc[0:0]

    @property
    def codes(self) -> list[str]:
        return sorted(self.clusters)


def _codes(n: int, rng: np.random.Generator, alnum_from: int) -> list[str]:
    """Unique 5-char codes: 4 digits + '0'; listings from index ``alnum_from`` on may be
    alphanumeric like '130A0' (new-style codes since 2024)."""
    base = rng.choice(np.arange(1300, 9999), size=n, replace=False)
    out = []
    letters = "ACEFGHJKLMNPRSTUWXY"
    for i, b in enumerate(base):
        if i >= alnum_from and i % 2 == 0:
            out.append(f"{b // 10:03d}{letters[i % len(letters)]}0")
        else:
            out.append(f"{b:04d}0")
    # alphanumeric codes may collide with each other; make them unique deterministically
    seen: set[str] = set()
    for i, c in enumerate(out):
        while c in seen:
            c = f"{(int(c[:3]) + 1) % 1000:03d}{c[3:]}"
        seen.add(c)
        out[i] = c
    return out


def simulate_market(cfg: MarketConfig) -> SimulatedMarket:
    """Generate the market described by ``cfg`` (deterministic per ``cfg.seed``)."""
    rng = np.random.default_rng(cfg.seed)
    days = offline_trading_days(cfg.start, cfg.end)
    if len(days) < 30:
        raise ValueError(f"simulation needs at least 30 trading days, got {len(days)} "
                         f"in {cfg.start}..{cfg.end}")
    T, N = len(days), cfg.stocks

    # ---- universe -----------------------------------------------------------------------
    n_late = int(N * cfg.listing_rate)
    order_listed = np.zeros(N, dtype=int)
    late = rng.choice(N, size=n_late, replace=False) if n_late else np.array([], int)
    order_listed[late] = rng.integers(T // 10, T - 20, size=n_late) if n_late else 0
    delisted = np.full(N, T, dtype=int)
    n_del = int(N * cfg.delisting_rate)
    cand = np.setdiff1d(np.arange(N), late)
    dels = rng.choice(cand, size=min(n_del, len(cand)), replace=False)
    delisted[dels] = rng.integers(T // 5, T - 5, size=len(dels))
    # codes: later listings get alphanumeric codes when they list in 2024 or later
    listed_2024 = np.array([k > 0 and days[k] >= dt.date(2024, 1, 1) for k in order_listed])
    order = np.argsort(listed_2024, kind="stable")  # old-style codes first
    raw_codes = _codes(N, rng, alnum_from=int((~listed_2024).sum()))
    codes = [""] * N
    for rank, i in enumerate(order):
        codes[i] = raw_codes[rank]
    sector = rng.integers(0, len(SECTOR33), size=N)
    market_seg = rng.choice(3, size=N, p=[0.5, 0.35, 0.15])
    scale = rng.choice(len(SCALE_CATS), size=N, p=[0.02, 0.05, 0.2, 0.3, 0.38, 0.05])
    cluster = rng.integers(0, cfg.clusters, size=N)
    beta = rng.normal(1.0, 0.3, size=N).clip(0.2, 2.2)
    # a few sector changes
    sector_change_day = np.full(N, T, dtype=int)
    movers = rng.choice(N, size=max(1, N // 200), replace=False)
    sector_change_day[movers] = rng.integers(T // 4, T - 1, size=len(movers))
    new_sector = rng.integers(0, len(SECTOR33), size=N)

    # ---- factors --------------------------------------------------------------------------
    mkt = rng.standard_t(5, size=T) * 0.009 + 0.0003
    sec = rng.standard_t(5, size=(T, len(SECTOR33))) * 0.006
    clus = rng.normal(0, 0.008, size=(T, cfg.clusters))
    z = rng.standard_t(4, size=(T, N)) / np.sqrt(2.0)
    base_vol = rng.uniform(0.010, 0.025, size=N)

    # earnings: quarterly, random phase; surprise drives drift for 20 days
    phase = rng.integers(0, 63, size=N)
    disc_idx = [np.arange(p, T, 63) for p in phase]
    disc_time_k = rng.choice(len(DISC_TIMES), size=(N, T // 63 + 2),
                             p=[0.05, 0.15, 0.15, 0.25, 0.15, 0.2, 0.05])
    surprise = rng.normal(0, 1, size=(N, T // 63 + 2))
    drift_until = np.full(N, -1)
    drift_size = np.zeros(N)
    disc_events: list[tuple[int, int, int]] = []  # (stock, event k, day index of effect)
    effect_day = {}
    for i in range(N):
        for k, t0 in enumerate(disc_idx[i]):
            t_disc = int(t0)
            dtime = DISC_TIMES[disc_time_k[i, k]]
            after = _after_close(days[t_disc], dtime)
            eff = t_disc + 1 if after else t_disc
            disc_events.append((i, k, t_disc))
            effect_day.setdefault(eff, []).append((i, k))

    sig = cfg.signal
    r = np.zeros((T, N))
    idio = np.zeros((T, N))
    alpha = np.zeros((T, N))
    persistent = np.zeros((T, N))  # part of alpha[t+1] expected to persist beyond t+1
    h = base_vol ** 2
    cum20 = np.zeros(N)
    for t in range(T):
        if t > 0:
            a_rev = -sig.reversal * idio[t - 1]
            clus_prev = np.bincount(cluster, weights=r[t - 1], minlength=cfg.clusters) / \
                np.maximum(np.bincount(cluster, minlength=cfg.clusters), 1)
            a_lead = sig.lead_lag * (clus_prev[cluster] - r[t - 1].mean())
            a_mom = sig.momentum * cum20
            a_pead = np.where(t <= drift_until, drift_size, 0.0)
            alpha[t] = a_rev + a_lead + a_mom + a_pead
            persistent[t] = a_mom + a_pead
        for i, k in effect_day.get(t, ()):
            drift_until[i] = t + 20
            drift_size[i] = sig.earnings_drift * surprise[i, k]
        eps = np.sqrt(h) * z[t]
        idio[t] = eps
        r[t] = beta * mkt[t] + sec[t, sector] + clus[t, cluster] + eps + alpha[t]
        h = base_vol ** 2 * 0.05 + 0.10 * eps ** 2 + 0.85 * h
        if t >= 21:
            cum20 = r[t - 20:t].sum(axis=0)  # t-20..t-1 for alpha[t+1]: t-21..t-2 w.r.t. t+1

    # ---- prices ---------------------------------------------------------------------------
    p0 = round_to_tick(np.exp(rng.normal(np.log(1500), 0.9, size=N)).clip(50, 80_000))
    no_trade = rng.random((T, N)) < cfg.no_trade_rate
    split_stock = rng.random(N) < cfg.split_rate
    split_day = np.where(split_stock, rng.integers(T // 5, T - 5, size=N), -1)
    split_ratio = rng.choice([2.0, 3.0, 5.0, 0.5], size=N, p=[0.5, 0.2, 0.15, 0.15])
    adj_factor = np.ones((T, N))
    for i in np.flatnonzero(split_stock):
        adj_factor[split_day[i], i] = 1.0 / split_ratio[i]

    C = np.full((T, N), np.nan)
    OPEN = np.full((T, N), np.nan)
    H = np.full((T, N), np.nan)
    L = np.full((T, N), np.nan)
    UL = np.zeros((T, N), dtype=bool)
    LL = np.zeros((T, N), dtype=bool)
    last = p0.copy()
    gap_z = rng.normal(0, 1, size=(T, N))
    wick = np.abs(rng.normal(0, 1, size=(T, 2, N)))
    realized = np.zeros((T, N))
    for t in range(T):
        base = last * adj_factor[t]  # ex-rights base price
        lo_lim, up_lim = limit_prices(base)
        vol = np.sqrt(np.maximum(base_vol ** 2, 1e-6))
        target = base * np.exp(r[t])
        close = round_to_tick(np.clip(target, lo_lim, up_lim))
        open_ = round_to_tick(np.clip(base * np.exp(0.4 * r[t] + 0.3 * vol * gap_z[t]), lo_lim, up_lim))
        high = round_to_tick(np.minimum(np.maximum(open_, close) * np.exp(0.5 * vol * wick[t, 0]), up_lim))
        low = round_to_tick(np.maximum(np.minimum(open_, close) * np.exp(-0.5 * vol * wick[t, 1]), lo_lim))
        # limit prices need not sit on the tick grid: rounding must not cross them
        close, open_, high, low = (np.clip(x, lo_lim, up_lim) for x in (close, open_, high, low))
        high = np.maximum(high, np.maximum(open_, close))
        low = np.minimum(low, np.minimum(open_, close))
        traded = ~no_trade[t]
        C[t] = np.where(traded, close, np.nan)
        OPEN[t] = np.where(traded, open_, np.nan)
        H[t] = np.where(traded, high, np.nan)
        L[t] = np.where(traded, low, np.nan)
        UL[t] = traded & (high >= up_lim)
        LL[t] = traded & (low <= lo_lim)
        realized[t] = np.where(traded, np.log(close / base), 0.0)
        last = np.where(traded, close, base)

    listed = (np.arange(T)[:, None] >= order_listed[None, :]) & (np.arange(T)[:, None] < delisted[None, :])
    # volumes: shares, larger on big moves; turnover ≈ volume × typical price
    shares = np.exp(rng.normal(np.log(2e5), 1.0, size=N))
    vo = np.round(shares * np.exp(rng.normal(0, 0.4, size=(T, N))) *
                  (1 + 20 * np.abs(realized))) * np.cumprod(1 / adj_factor, axis=0)
    vo = np.round(vo / 100) * 100
    va = np.round(vo * (H + L + C) / 3)
    vo = np.where(np.isnan(C), np.nan, vo)

    # backward cumulative adjustment as the API publishes it: factor of all later events
    later = np.cumprod(adj_factor[::-1], axis=0)[::-1]
    back = np.vstack([later[1:], np.ones((1, N))])

    # ---- oracle -------------------------------------------------------------------------
    log_close = np.log(np.where(listed, np.exp(np.cumsum(realized, axis=0)), np.nan))
    oracle = {}
    for hzn in HORIZONS:
        exp_ret = np.vstack([alpha[1:], np.zeros((1, N))]) + (hzn - 1) * \
            np.vstack([persistent[1:], np.zeros((1, N))])
        fwd = np.full((T, N), np.nan)
        fwd[:-hzn] = log_close[hzn:] - log_close[:-hzn]
        oracle[hzn] = _mean_rank_ic(exp_ret[30:T - hzn], fwd[30:T - hzn])

    # ---- frames ---------------------------------------------------------------------------
    tt, ii = np.nonzero(listed)
    date_arr = np.array(days, dtype="datetime64[D]")
    code_arr = np.array(codes)
    bars = pd.DataFrame({
        "Date": pd.to_datetime(date_arr[tt]).strftime("%Y-%m-%d"),
        "Code": code_arr[ii],
        "O": OPEN[tt, ii], "H": H[tt, ii], "L": L[tt, ii], "C": C[tt, ii],
        "UL": np.where(UL[tt, ii], "1", "0"), "LL": np.where(LL[tt, ii], "1", "0"),
        "Vo": vo[tt, ii], "Va": va[tt, ii],
        "AdjFactor": adj_factor[tt, ii],
        "AdjO": np.round(OPEN[tt, ii] * back[tt, ii], 1), "AdjH": np.round(H[tt, ii] * back[tt, ii], 1),
        "AdjL": np.round(L[tt, ii] * back[tt, ii], 1), "AdjC": np.round(C[tt, ii] * back[tt, ii], 1),
        "AdjVo": np.round(vo[tt, ii] / back[tt, ii]),
    })
    bars = bars.sort_values(["Date", "Code"], kind="stable").reset_index(drop=True)
    slices = {}
    bd = bars["Date"].to_numpy()
    starts = np.flatnonzero(np.r_[True, bd[1:] != bd[:-1]])
    ends = np.r_[starts[1:], len(bd)]
    for s, e in zip(starts, ends, strict=True):
        slices[dt.date.fromisoformat(bd[s])] = slice(int(s), int(e))

    sec_now = np.where(tt[:, None] >= sector_change_day[ii][:, None], new_sector[ii][:, None],
                       sector[ii][:, None])[:, 0]
    s33 = np.array([x[0] for x in SECTOR33])
    s33_name = np.array([x[1] for x in SECTOR33])
    s17 = np.array([x[2] for x in SECTOR33])
    s17_name = np.array([SECTOR17_NAMES[x] for x in s17])
    name_ja = np.array([f"シム{c}" for c in codes])
    name_en = np.array([f"SIM {c} CO.,LTD." for c in codes])
    master = pd.DataFrame({
        "Date": pd.to_datetime(date_arr[tt]).strftime("%Y-%m-%d"),
        "Code": code_arr[ii],
        "CoName": name_ja[ii],
        "CoNameEn": name_en[ii],
        "S17": s17[sec_now], "S17Nm": s17_name[sec_now],
        "S33": s33[sec_now], "S33Nm": s33_name[sec_now],
        "ScaleCat": np.array(SCALE_CATS)[scale[ii]],
        "Mkt": np.array([m for m, _ in MARKETS])[market_seg[ii]],
        "MktNm": np.array([n for _, n in MARKETS])[market_seg[ii]],
        "Mrgn": "1", "MrgnNm": "信用", "ProdCat": "011",
    }).sort_values(["Date", "Code"], kind="stable").reset_index(drop=True)

    topix_level = 2000 * np.exp(np.cumsum(mkt))
    t_open = topix_level / np.exp(mkt) * np.exp(0.3 * mkt)
    topix = pd.DataFrame({
        "Date": [d.isoformat() for d in days],
        "O": np.round(t_open, 2),
        "H": np.round(np.maximum(t_open, topix_level) * (1 + np.abs(rng.normal(0, 0.003, T))), 2),
        "L": np.round(np.minimum(t_open, topix_level) * (1 - np.abs(rng.normal(0, 0.003, T))), 2),
        "C": np.round(topix_level, 2),
    })

    fins = _fins_frame(disc_events, disc_time_k, surprise, days, codes, listed, C, rng)
    investor = _investor_frame(days, mkt, rng)
    margin = _margin_frame(days, codes, listed, vo, rng)
    log.info("simulated %d stocks x %d days (%d bar rows); oracle 1d RankIC %.3f",
             N, T, len(bars), oracle[1])
    return SimulatedMarket(cfg, days, master, bars, topix, fins, investor, margin, oracle,
                           dict(zip(codes, cluster.tolist(), strict=True)), slices)


def _after_close(day: dt.date, disc_time: str) -> bool:
    """True when a disclosure at ``disc_time`` on ``day`` counts from the next trade date."""
    if not disc_time:
        return True  # unknown time: conservatively after the close
    close = session_close(day)
    hh, mm, _ = (int(x) for x in disc_time.split(":"))
    return (hh, mm) >= (close.hour, close.minute)


def _mean_rank_ic(signal: np.ndarray, fwd: np.ndarray) -> float:
    """Mean over rows of the Spearman correlation of ``signal`` and ``fwd`` (NaN-aware)."""
    ics = []
    for s, f in zip(signal, fwd, strict=True):
        ok = ~np.isnan(f) & ~np.isnan(s)
        if ok.sum() < 10:
            continue
        rs = pd.Series(s[ok]).rank().to_numpy()
        rf = pd.Series(f[ok]).rank().to_numpy()
        c = np.corrcoef(rs, rf)[0, 1]
        if np.isfinite(c):
            ics.append(c)
    return float(np.mean(ics)) if ics else float("nan")


def _fmt(x: float) -> str:
    return "" if not np.isfinite(x) else f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}"


def _fins_frame(events, time_k, surprise, days, codes, listed, C, rng) -> pd.DataFrame:
    rows = []
    T = len(days)
    for i, k, t in events:
        if not listed[t, i]:
            continue
        day = days[t]
        price = C[max(0, t - 1): t + 1, i]
        price = float(np.nanmean(price)) if np.isfinite(price).any() else 1000.0
        shares = 1e6 * (10 + (hash(codes[i]) % 500))
        eps_fc = price / 15.0
        eps_act = eps_fc * (1 + 0.1 * surprise[i, k])
        quarter = (k % 4) + 1
        q_scale = quarter / 4
        sales = eps_act * shares * 12 * q_scale
        fy_end = dt.date(day.year + (1 if day.month > 3 else 0), 3, 31)
        rows.append({
            "DiscDate": day.isoformat(), "DiscTime": DISC_TIMES[time_k[i, k]], "Code": codes[i],
            "DiscNo": f"{day:%Y%m%d}{i:05d}{k:02d}",
            "DocType": "FYFinancialStatements_Consolidated_JP" if quarter == 4
            else f"{quarter}QFinancialStatements_Consolidated_JP",
            "CurPerType": "FY" if quarter == 4 else f"{quarter}Q",
            "CurPerSt": dt.date(fy_end.year - 1, 4, 1).isoformat(),
            "CurPerEn": (day - dt.timedelta(days=40)).isoformat(),
            "CurFYSt": dt.date(fy_end.year - 1, 4, 1).isoformat(), "CurFYEn": fy_end.isoformat(),
            "Sales": _fmt(sales), "OP": _fmt(sales * 0.08), "OdP": _fmt(sales * 0.085),
            "NP": _fmt(eps_act * shares * q_scale), "EPS": _fmt(eps_act * q_scale),
            "TA": _fmt(sales * 3), "Eq": _fmt(sales * 1.2), "BPS": _fmt(price / 1.3),
            "FSales": _fmt(sales / q_scale * (1 + 0.02 * surprise[i, k])),
            "FOP": _fmt(sales / q_scale * 0.08), "FOdP": _fmt(sales / q_scale * 0.085),
            "FNP": _fmt(eps_fc * shares * (1 + 0.05 * surprise[i, k])),
            "FEPS": _fmt(eps_fc * (1 + 0.05 * surprise[i, k])),
            "ShOutFY": _fmt(shares),
        })
    del T
    from jquantsapi.constants import FIN_SUMMARY_COLUMNS_V2

    # the API sends every column; fields the simulation does not model are "" (as for
    # items a company does not disclose)
    out = pd.DataFrame(rows).reindex(columns=FIN_SUMMARY_COLUMNS_V2, fill_value="")
    return out.sort_values(["DiscDate", "Code"], kind="stable").reset_index(drop=True)


def _next_trading(days: list[dt.date], after: dt.date, n: int) -> dt.date | None:
    import bisect

    k = bisect.bisect_right(days, after) + n - 1
    return days[k] if k < len(days) else None


def _investor_frame(days, mkt, rng) -> pd.DataFrame:
    """Weekly flows (Mon..Fri), published on the 4th trade date after the week's end."""
    rows = []
    weeks: dict[dt.date, list[int]] = {}
    for t, d in enumerate(days):
        weeks.setdefault(d - dt.timedelta(days=d.weekday()), []).append(t)
    groups = ["Prop", "Brk", "Tot", "Ind", "Frgn", "SecCo", "InvTr", "BusCo", "OthCo",
              "InsCo", "Bank", "TrstBnk", "OthFin"]
    for monday, idx in sorted(weeks.items()):
        friday = monday + dt.timedelta(days=4)
        pub = _next_trading(days, friday, 4)
        if pub is None:
            continue
        wk_ret = float(mkt[idx].sum())
        for section in INVESTOR_SECTIONS:
            row = {"PubDate": pub.isoformat(), "StDate": monday.isoformat(),
                   "EnDate": friday.isoformat(), "Section": section}
            for g in groups:
                tot = float(rng.uniform(1e11, 5e12))
                tilt = (0.3 if g == "Frgn" else -0.2 if g == "Ind" else 0.0) * wk_ret * 10
                bal = tot * (tilt + rng.normal(0, 0.02))
                row[f"{g}Sell"] = round((tot - bal) / 2)
                row[f"{g}Buy"] = round((tot + bal) / 2)
                row[f"{g}Tot"] = round(tot)
                row[f"{g}Bal"] = round(bal)
            rows.append(row)
    return pd.DataFrame(rows)


def _margin_frame(days, codes, listed, vo, rng) -> pd.DataFrame:
    """Weekly margin interest as of each Friday's trade date, published 2 trade dates later."""
    from jquantsapi.constants import MKT_MARGIN_INTEREST_COLUMNS_V2

    fridays = [t for t in range(len(days)) if t + 1 == len(days) or
               days[t + 1] - days[t] > dt.timedelta(days=1) and days[t].weekday() >= 3]
    N = len(codes)
    code_arr = np.array(codes)
    parts = []
    for t in fridays:
        pub = _next_trading(days, days[t], 2)
        if pub is None:
            continue
        live = np.flatnonzero(listed[t])
        avg = np.nan_to_num(np.nanmean(vo[max(0, t - 4): t + 1], axis=0))
        shrt = (np.round(avg * rng.uniform(0.2, 1.5, N) / 100) * 100)[live]
        long_ = (np.round(avg * rng.uniform(1.0, 6.0, N) / 100) * 100)[live]
        parts.append(pd.DataFrame({
            "PubDate": pub.isoformat(), "Date": days[t].isoformat(), "Code": code_arr[live],
            "IssType": "2", "ShrtVol": shrt, "LongVol": long_,
            "ShrtNegVol": np.round(shrt * 0.3), "LongNegVol": np.round(long_ * 0.2),
            "ShrtStdVol": np.round(shrt * 0.7), "LongStdVol": np.round(long_ * 0.8),
        }))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    # value (*Val) columns are null before the 2026-09 daily-margin spec change
    return frame.reindex(columns=MKT_MARGIN_INTEREST_COLUMNS_V2)
