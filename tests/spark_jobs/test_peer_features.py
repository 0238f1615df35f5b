"""The peer graph and peer features against numpy on the hand-built market of
``context_market``, and the point-in-time check of every context group: changing
everything after a date leaves earlier features and snapshots bit-identical."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from context_market import (
    CODES,
    CUT,
    DAYS,
    N,
    T,
    base_rows,
    check,
    flow_rows,
    frame,
    hand_market,
    long,
    margin_rows,
    master_rows,
    ref_returns,
    sector_membership,
    statement_rows,
    to_arrow,
)

from gogooku3.jpx.calendar import TradingCalendar, offline_trading_days
from spark_jobs import build_features
from spark_jobs.features import flows, fundamentals, market, peers, sector
from spark_jobs.features.handoff import Handoff
from spark_jobs.features.inputs import BuildInputs
from spark_jobs.features.sessions import CALENDAR_ANCHOR

pytestmark = pytest.mark.spark


# ---- peers ---------------------------------------------------------------------------


def _ref_graph(r: pd.DataFrame, snap: dt.date, k: int, window: int) -> pd.DataFrame:
    """Top-k correlation peers from the wide ``r`` (days x codes) of the window ending at
    ``snap``."""
    pos = DAYS.index(snap)
    win = r.iloc[pos - window + 1: pos + 1]
    win = win.loc[:, win.notna().sum() >= window * 3 // 4]
    x = win - win.mean()
    x = x.fillna(0.0).to_numpy()
    c = (x.T @ x) / np.outer(np.sqrt((x * x).sum(0)), np.sqrt((x * x).sum(0)))
    codes = list(win.columns)
    rows = []
    for a, code in enumerate(codes):
        cand = sorted((-c[a, b], codes[b]) for b in range(len(codes)) if b != a)[:k]
        rows += [(snap, code, p, rank + 1, -v) for rank, (v, p) in enumerate(cand)]
    return pd.DataFrame(rows, columns=["date", "code", "peer_code", "rank", "corr"])


def _graph(ser, days, **kw) -> pd.DataFrame:
    """The graph with no sector known: returns relative to each day's mean of all codes."""
    returns = ser.select("date", "code", "_r1").toArrow()
    snaps = peers.peer_graph(returns.append_column("sector", pa.nulls(len(returns), pa.string())),
                             days, **kw)
    return pa.concat_tables(snaps.values()).to_pandas()


def test_peer_graph_neighbours_match_numpy_correlation_ranking(ser, pdata):
    graph = _graph(ser, DAYS, k=3, window=20, cadence=10)
    r1 = ref_returns(pdata["prices"], 1)
    relative = r1.sub(r1.mean(axis=1), axis=0)  # no sector: minus the day's mean
    index = {d: len(offline_trading_days(CALENDAR_ANCHOR, d)) - 1 for d in DAYS}
    expected_snaps = [d for d in DAYS if index[d] % 10 == 0 and DAYS.index(d) >= 20]
    snaps = sorted(graph["date"].unique())
    assert snaps == expected_snaps
    assert all(DAYS.index(b) - DAYS.index(a) == 10 for a, b in zip(snaps, snaps[1:], strict=False))
    assert graph["rank"].dtype.kind == "i"
    for snap in snaps:
        ref = _ref_graph(relative, snap, 3, 20)
        g = graph[graph["date"] == snap].sort_values(["code", "rank"]).reset_index(drop=True)
        ref = ref.sort_values(["code", "rank"]).reset_index(drop=True)
        assert g[["code", "peer_code", "rank"]].values.tolist() == \
            ref[["code", "peer_code", "rank"]].values.tolist(), snap
        np.testing.assert_allclose(g["corr"], ref["corr"], rtol=1e-9)
        # the correlation is numpy's own, on codes with every return present
        win = relative.iloc[DAYS.index(snap) - 19: DAYS.index(snap) + 1]
        full = [c for c in CODES if win[c].notna().all()]
        cc = np.corrcoef(win[full].to_numpy().T)
        for _, e in g[g.code.isin(full) & g.peer_code.isin(full)].iterrows():
            assert e["corr"] == pytest.approx(cc[full.index(e.code), full.index(e.peer_code)],
                                              rel=1e-9)



def test_peer_graph_with_sectors_ranks_sector_relative_return_correlation(ser, pdata):
    returns = ser.select("date", "code", "_r1").toArrow()
    member = sector_membership(pdata["master"])
    sectors = member.where(member.notna(), None).stack(future_stack=True)
    keys = zip(returns.column("date").to_pylist(), returns.column("code").to_pylist(), strict=True)
    sectors = pa.array([sectors[key] for key in keys], pa.string())
    snaps = peers.peer_graph(returns.append_column("sector", sectors),
                             DAYS, k=3, window=20, cadence=10)
    graph = pa.concat_tables(snaps.values()).to_pandas()
    r1 = ref_returns(pdata["prices"], 1)
    relative = r1.copy()
    for d in DAYS:  # minus the day's sector mean; no sector: minus the day's mean
        for c in CODES:
            s = member.loc[d, c]
            peers_of = CODES if pd.isna(s) else [o for o in CODES if member.loc[d, o] == s]
            relative.loc[d, c] = r1.loc[d, c] - r1.loc[d, peers_of].mean()
    assert pd.isna(member.loc[DAYS[5], CODES[7]])  # a code without a sector is in the test
    sectorless = _graph(ser, DAYS, k=3, window=20, cadence=10)
    changed = 0
    for snap in sorted(graph["date"].unique()):
        ref = _ref_graph(relative, snap, 3, 20).sort_values(["code", "rank"])
        g = graph[graph["date"] == snap].sort_values(["code", "rank"])
        assert g[["code", "peer_code", "rank"]].values.tolist() == \
            ref[["code", "peer_code", "rank"]].values.tolist(), snap
        np.testing.assert_allclose(g["corr"], ref["corr"], rtol=1e-9)
        changed += not np.allclose(g["corr"], sectorless[sectorless["date"] == snap].sort_values(
            ["code", "rank"])["corr"])
    assert changed  # the sectors change the graph
    with pytest.raises(ValueError, match="lack column.*sector"):
        peers.peer_graph(returns, DAYS, k=3, window=20, cadence=10)


def test_peer_graph_from_a_later_start_reproduces_the_same_snapshots(ser, pdata):
    full = _graph(ser, DAYS, k=3, window=20, cadence=10)
    start = DAYS[85]
    part = _graph(ser.filter(f"date >= '{DAYS[40]}'"), DAYS[40:], k=3, window=20, cadence=10,
                  start=start)
    first = max(d for d in full["date"].unique() if d <= start)
    assert min(part["date"]) == first
    want = full[full["date"] >= first].sort_values(["date", "code", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        part.sort_values(["date", "code", "rank"]).reset_index(drop=True), want)


def test_peer_features_use_latest_snapshot_and_peer_returns_of_the_day(ser, pdata):
    graph = _graph(ser, DAYS, k=3, window=20, cadence=10)
    snaps = sorted(graph["date"].unique())
    serve = peers.serving_snapshots(DAYS, snaps)
    assert min(serve) == snaps[0] and serve[DAYS[-1]] == snaps[-1]
    rets = frame(ser.select("date", "code", "_r1", "_r5"))
    rets = rets[rets["date"].isin(serve)].sample(frac=1.0, random_state=5)  # any row order
    got = pd.concat([rows[["date", "code"]].assign(**peers.peer_stats(rows, graph[graph["date"] == s]))
                     for s, rows in rets.groupby(rets["date"].map(serve))])
    r1, r5 = ref_returns(pdata["prices"], 1), ref_returns(pdata["prices"], 5)
    exp = {c: pd.DataFrame(np.nan, index=DAYS, columns=CODES) for c in peers.FEATURES}
    for d in DAYS:
        past = [s for s in snaps if s <= d]
        if not past:
            continue
        g = graph[graph["date"] == past[-1]]
        for code, e in g.groupby("code"):
            v1 = r1.loc[d, list(e.peer_code)].dropna()
            v5 = r5.loc[d, list(e.peer_code)].dropna()
            exp["peer_ret_1d_mean"].loc[d, code] = v1.mean() if len(v1) else np.nan
            exp["peer_ret_5d_mean"].loc[d, code] = v5.mean() if len(v5) else np.nan
            exp["peer_ret_5d_var"].loc[d, code] = np.var(v5, ddof=1) if len(v5) >= 2 else np.nan
            exp["peer_corr_mean"].loc[d, code] = e["corr"].mean()
    check(got, {c: long(v, c) for c, v in exp.items()}, rtol=1e-9)


# ---- point in time -------------------------------------------------------------------


def _all_groups(spark, scratch, prices, topix, master, flow_frame, margin, statements):
    """The build's passes (``build_features.compose``) over the whole hand-built market:
    normalized features and peer graph of the dates up to ``CUT``."""
    inputs = BuildInputs(
        start=DAYS[0], end=DAYS[-1], read_from=DAYS[0], dates=DAYS,
        prices=to_arrow(base_rows(prices), "silver.equities_prices_daily"),
        topix=topix, master_asof=master, flows=flow_frame,
        margin=to_arrow(margin, "silver.margin_interest"),
        statements=to_arrow(statements, "silver.fins_statements"))
    settings = build_features.BuildSettings(build_features.catalogue_features(),
                                            {"k": 3, "window": 20, "cadence": 10},
                                            TradingCalendar())
    handoff = Handoff(str(scratch))
    feats, rows, graph = build_features.compose(spark, inputs, settings, handoff)
    try:
        pdf = feats.filter(f"date <= '{CUT}'").toPandas()
        g = graph.to_pandas()
        g = g[g["date"] <= CUT]
    finally:
        handoff.remove()
    assert rows == T * N
    assert not scratch.exists()
    return (pdf.sort_values(["date", "code"]).reset_index(drop=True),
            g.sort_values(["date", "code", "rank"]).reset_index(drop=True))


def test_changing_everything_after_a_date_leaves_earlier_features_bit_identical(spark, pdata,
                                                                               tmp_path):
    before, g_before = _all_groups(spark, tmp_path / "before", pdata["prices"], pdata["topix"], pdata["master"],
                                   pdata["flows"], pdata["margin"], pdata["statements"])
    prices, topix = hand_market(perturb_after=DAYS.index(CUT))
    assert not np.allclose(prices["adj_close"].iloc[-N:], pdata["prices"]["adj_close"].iloc[-N:])
    after, g_after = _all_groups(spark, tmp_path / "after", prices, topix, master_rows(cut_change=True),
                                 flow_rows(perturb=True), margin_rows(perturb=True),
                                 statement_rows(perturb=True))
    assert len(before) == (DAYS.index(CUT) + 1) * N
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    pd.testing.assert_frame_equal(g_before, g_after, check_exact=True)
    context = (market.FEATURES + sector.FEATURES + flows.FEATURES + fundamentals.MARGIN_FEATURES
               + fundamentals.STATEMENT_FEATURES + peers.FEATURES)
    for col in context:
        assert before[col].notna().any(), f"{col} is never computed"
