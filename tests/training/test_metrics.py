"""Per-date forecast metrics against independent computations."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from training.metrics import DAILY_COLUMNS, daily_metrics, decile_returns, summarize


def _frames(rng, days=5, n=50, noise=1.0):
    rows = []
    for k in range(days):
        ret = rng.normal(size=n)
        score = ret + noise * rng.normal(size=n)
        for i in range(n):
            rows.append((dt.date(2025, 1, 6) + dt.timedelta(days=k), f"{1000 + i}0", score[i], ret[i]))
    df = pd.DataFrame(rows, columns=["date", "code", "score", "fwd_ret"])
    return df[["date", "code", "score"]], df[["date", "code", "fwd_ret"]]


def test_daily_metrics_match_scipy_and_deciles():
    rng = np.random.default_rng(0)
    pred, lab = _frames(rng)
    daily = daily_metrics(pred, lab, "m", 5)
    assert list(daily.columns) == DAILY_COLUMNS and len(daily) == 5
    for row in daily.itertuples():
        p = pred[pred["date"] == row.date]["score"].to_numpy()
        y = lab[lab["date"] == row.date]["fwd_ret"].to_numpy()
        assert np.isclose(row.ic, pearsonr(p, y)[0])
        assert np.isclose(row.rank_ic, spearmanr(p, y)[0])
        order = np.argsort(p)
        assert np.isclose(row.decile_spread, y[order[-5:]].mean() - y[order[:5]].mean())
        assert row.n == 50 and row.horizon == 5


def test_perfect_forecast_is_monotone_with_full_hit_rate():
    rng = np.random.default_rng(1)
    pred, lab = _frames(rng, noise=0.0)
    daily = daily_metrics(pred, lab, "m", 1)
    assert np.allclose(daily["rank_ic"], 1.0) and np.allclose(daily["hit_rate"], 1.0)
    summary = summarize(daily, decile_returns(pred, lab))
    assert np.isclose(summary["monotonicity"], 1.0)
    spread = daily["decile_spread"]
    assert np.isclose(summary["sharpe"], spread.mean() / spread.std() * np.sqrt(252))


def test_missing_values_and_thin_days_are_left_out():
    rng = np.random.default_rng(2)
    pred, lab = _frames(rng, days=2, n=30)
    pred.loc[pred.index[:25], "score"] = np.nan  # first day keeps 5 names (< 10)
    daily = daily_metrics(pred, lab, "m", 1)
    assert len(daily) == 1 and daily["n"].iloc[0] == 30
