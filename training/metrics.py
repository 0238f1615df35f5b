"""Forecast quality per trade date, then aggregated: IC, RankIC, ICIR, hit rate, decile
long-short spread and monotonicity, and the annualized Sharpe of top-minus-bottom decile.

Every statistic is computed within a date first (a cross-section), so days with more
stocks do not weigh more; aggregates are means over dates. ``daily_metrics`` is the
per-date frame shared with serving (docs/training.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAILY_COLUMNS = ["date", "model", "horizon", "ic", "rank_ic", "hit_rate", "decile_spread", "n"]
TRADING_DAYS = 252
MIN_NAMES = 10


def _day_stats(score: np.ndarray, ret: np.ndarray) -> tuple[float, float, float, float, np.ndarray]:
    n = len(score)
    ic = float(np.corrcoef(score, ret)[0, 1]) if np.std(score) > 0 and np.std(ret) > 0 else np.nan
    rs = pd.Series(score).rank().to_numpy()
    rr = pd.Series(ret).rank().to_numpy()
    ric = float(np.corrcoef(rs, rr)[0, 1]) if np.std(rs) > 0 and np.std(rr) > 0 else np.nan
    # hit rate: the sign of the score relative to the day's median matches the return's
    hit = float(np.mean(np.sign(score - np.median(score)) == np.sign(ret - np.median(ret))))
    decile = np.minimum((rs - 1) * 10 // n, 9).astype(int)
    means = np.array([ret[decile == k].mean() if (decile == k).any() else np.nan
                      for k in range(10)])
    return ic, ric, hit, float(means[9] - means[0]), means


def daily_metrics(pred: pd.DataFrame, labels: pd.DataFrame, model: str, horizon: int) -> pd.DataFrame:
    """Per-date metrics of ``pred`` (``date, code, score``) against ``labels`` (``date,
    code, fwd_ret``) for one ``model`` and ``horizon``: columns ``DAILY_COLUMNS``.

    Rows whose score or return is missing are dropped; dates with fewer than 10 stocks
    are left out. ``decile_spread`` is the top-minus-bottom decile mean return (deciles
    of the score's rank).
    """
    df = pred[["date", "code", "score"]].merge(labels[["date", "code", "fwd_ret"]],
                                               on=["date", "code"], how="inner")
    df = df[np.isfinite(df["score"]) & np.isfinite(df["fwd_ret"])]
    rows = []
    for day, g in df.groupby("date", sort=True):
        if len(g) < MIN_NAMES:
            continue
        ic, ric, hit, spread, _ = _day_stats(g["score"].to_numpy(float), g["fwd_ret"].to_numpy(float))
        rows.append((day, model, int(horizon), ic, ric, hit, spread, len(g)))
    return pd.DataFrame(rows, columns=DAILY_COLUMNS)


def decile_returns(pred: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """Mean over dates of each score decile's mean return (index 0 = lowest scores)."""
    df = pred[["date", "code", "score"]].merge(labels[["date", "code", "fwd_ret"]],
                                               on=["date", "code"])
    df = df[np.isfinite(df["score"]) & np.isfinite(df["fwd_ret"])]
    per_day = [_day_stats(g["score"].to_numpy(float), g["fwd_ret"].to_numpy(float))[4]
               for _, g in df.groupby("date") if len(g) >= MIN_NAMES]
    return np.nanmean(np.vstack(per_day), axis=0) if per_day else np.full(10, np.nan)


def summarize(daily: pd.DataFrame, deciles: np.ndarray | None = None) -> dict[str, float]:
    """Aggregate one model/horizon's daily frame: means, ICIR (mean/std of the daily
    RankIC), annualized Sharpe of the daily top-minus-bottom spread (scaled by
    sqrt(252 / horizon): overlapping h-day returns held for h days), and decile
    monotonicity (Spearman of decile index vs decile mean return, in [-1, 1])."""
    if daily.empty:
        return {k: float("nan") for k in ("ic", "rank_ic", "icir", "hit_rate", "decile_spread",
                                          "sharpe", "monotonicity")} | {"days": 0}
    h = int(daily["horizon"].iloc[0])
    ric = daily["rank_ic"].dropna()
    spread = daily["decile_spread"].dropna()
    out = {
        "ic": float(daily["ic"].mean()),
        "rank_ic": float(ric.mean()),
        "icir": float(ric.mean() / ric.std()) if len(ric) > 1 and ric.std() > 0 else float("nan"),
        "hit_rate": float(daily["hit_rate"].mean()),
        "decile_spread": float(spread.mean()),
        "sharpe": (float(spread.mean() / spread.std() * np.sqrt(TRADING_DAYS / h))
                   if len(spread) > 1 and spread.std() > 0 else float("nan")),
        "days": int(len(daily)),
    }
    if deciles is not None and np.isfinite(deciles).all():
        out["monotonicity"] = float(pd.Series(deciles).rank().corr(pd.Series(np.arange(10.0))))
    else:
        out["monotonicity"] = float("nan")
    return out


def evaluate_predictions(pred: pd.DataFrame, labels: pd.DataFrame, model: str,
                         horizons=(1, 2, 3, 5, 10)
                         ) -> tuple[pd.DataFrame, dict[int, dict], dict[int, np.ndarray]]:
    """All horizons of a wide prediction frame (``pred_{h}d``) against a wide label frame
    (``fwd_ret_{h}d``): the concatenated daily frames, ``{h: summarize(...)}`` and
    ``{h: decile_returns(...)}``."""
    daily_all, summary, deciles = [], {}, {}
    for h in horizons:
        p = pred[["date", "code", f"pred_{h}d"]].rename(columns={f"pred_{h}d": "score"})
        y = labels[["date", "code", f"fwd_ret_{h}d"]].rename(columns={f"fwd_ret_{h}d": "fwd_ret"})
        daily = daily_metrics(p, y, model, h)
        deciles[h] = decile_returns(p, y)
        summary[h] = summarize(daily, deciles[h])
        daily_all.append(daily)
    return pd.concat(daily_all, ignore_index=True), summary, deciles
