"""A small gold lake for training tests, built with numpy/pandas and delta-rs (no Spark).

From a simulated market: split-adjusted closes -> a handful of the catalogue's raw
features (returns, volatility, peer means), normalized per date with the feature job's
own pandas kernel (``spark_jobs.features.normalize.cross_section``); a correlation peer
graph every 20 trade dates from the job's kernels (sector-relative returns, top-k
correlations) over 60-day windows; labels as the label job defines
them (forward adjusted close-to-close returns, demeaned per date). Catalogue columns
that are not computed here are null.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from gogooku3.lake import catalog, deltars
from gogooku3.market.sim import MarketConfig, PlantedSignal, SimulatedMarket
from spark_jobs.features.normalize import by_date, normalized_names
from spark_jobs.features.peers import sector_relative, snapshot_dates, snapshot_edges

FEATURES = ("ret_1d", "ret_5d", "ret_20d", "log_ret_1d", "vol_20d", "peer_ret_1d_mean",
            "peer_ret_5d_mean", "peer_corr_mean")
HORIZONS = (1, 2, 3, 5, 10)


def _adjusted_close(market: SimulatedMarket) -> pd.DataFrame:
    bars = market.bars
    # forward-adjust with the cumulative split factor, as silver does
    cum = bars.assign(f=bars["AdjFactor"]).pivot(index="Date", columns="Code", values="f")
    cum = cum.fillna(1.0).cumprod()
    close = bars.pivot(index="Date", columns="Code", values="C")
    return close / cum


def _peer_graph(ret: pd.DataFrame, days: list[dt.date], sector_of: pd.Series,
                k: int = 10) -> pd.DataFrame:
    r = ret.to_numpy(dtype=float).ravel()
    day = np.repeat(np.arange(len(ret)), ret.shape[1])
    sector = np.tile(sector_of.reindex(ret.columns).fillna(-1).to_numpy(dtype=np.int64),
                     len(ret))
    ret = pd.DataFrame(sector_relative(day, sector, r, np.isfinite(r)).reshape(ret.shape),
                       index=ret.index, columns=ret.columns)
    parts = []
    for snap in snapshot_dates(days, 20):
        t = days.index(snap)
        if t < 20:
            continue
        win = ret.iloc[max(0, t - 59):t + 1].sort_index(axis=1)
        edges = snapshot_edges(win.to_numpy(dtype=float), win.columns.to_numpy(), k, min_obs=20)
        parts.append(pd.DataFrame({"date": snap, **edges}))
    return pd.concat(parts, ignore_index=True)


def build_gold(market: SimulatedMarket, lake_root: str) -> dict:
    """Write gold.features, gold.labels and gold.peer_graph for every simulated day."""
    days = list(market.days)
    close = _adjusted_close(market)
    close.index = [dt.date.fromisoformat(d) for d in close.index]
    ret = close / close.shift(1) - 1
    raw = {
        "ret_1d": ret, "ret_5d": close / close.shift(5) - 1,
        "ret_20d": close / close.shift(20) - 1, "log_ret_1d": np.log(close / close.shift(1)),
        "vol_20d": np.log(close / close.shift(1)).rolling(20).std(),
    }
    sector_of = market.master.groupby("Code")["S33"].last().astype(int)
    graph = _peer_graph(ret, days, sector_of)
    snap_of = np.searchsorted(np.array(sorted(graph["date"].unique()), dtype="datetime64[D]"),
                              np.array(days, dtype="datetime64[D]"), side="right") - 1
    snaps = sorted(graph["date"].unique())
    codes = list(close.columns)
    pos = {c: i for i, c in enumerate(codes)}
    peer1 = np.full(close.shape, np.nan)
    peer5 = np.full(close.shape, np.nan)
    pcorr = np.full(close.shape, np.nan)
    r1, r5 = raw["ret_1d"].to_numpy(), raw["ret_5d"].to_numpy()
    for s, snap in enumerate(snaps):
        g = graph[graph["date"] == snap]
        rows = np.array([pos[c] for c in g["code"]])
        cols = np.array([pos[c] for c in g["peer_code"]])
        for t in np.flatnonzero(snap_of == s):
            for arr, src in ((peer1, r1), (peer5, r5)):
                v = pd.Series(src[t, cols]).groupby(rows).mean()
                arr[t, v.index.to_numpy()] = v.to_numpy()
            c = pd.Series(g["corr"].to_numpy()).groupby(rows).mean()
            pcorr[t, c.index.to_numpy()] = c.to_numpy()
    raw["peer_ret_1d_mean"] = pd.DataFrame(peer1, index=close.index, columns=codes)
    raw["peer_ret_5d_mean"] = pd.DataFrame(peer5, index=close.index, columns=codes)
    raw["peer_corr_mean"] = pd.DataFrame(pcorr, index=close.index, columns=codes)
    present = market.bars.assign(one=1).pivot(index="Date", columns="Code", values="one")
    present.index = close.index
    long = pd.DataFrame({"date": np.repeat(close.index.to_numpy(), len(codes)),
                         "code": np.tile(codes, len(close))})
    for name, frame in raw.items():
        long[name] = frame.to_numpy().ravel()
    long = long[present.notna().to_numpy().ravel()]
    long = long.sort_values(["date", "code"], kind="stable").reset_index(drop=True)
    blocks = by_date(long["date"].to_numpy(), long[list(FEATURES)].to_numpy(dtype=np.float32).T)
    feats = pd.DataFrame(np.concatenate(blocks).T, columns=normalized_names(FEATURES))
    feats.insert(0, "code", long["code"])
    feats.insert(0, "date", long["date"])
    spec = catalog.table("gold.features")
    table = {c: feats[c] if c in feats else pd.Series(np.nan, index=feats.index)
             for c in spec.column_names}
    frame = pa.Table.from_pandas(pd.DataFrame(table), preserve_index=False)
    deltars.write_dates(frame.cast(spec.arrow_schema()), spec, days, lake_root)
    labels = pd.DataFrame({"date": long["date"].to_numpy(), "code": long["code"].to_numpy()})
    for h in HORIZONS:
        fwd = (close.shift(-h) / close - 1).to_numpy().ravel()
        fwd = fwd[present.notna().to_numpy().ravel()]
        labels[f"fwd_ret_{h}d"] = fwd
        labels[f"fwd_ret_{h}d_dm"] = fwd - labels.groupby("date")[f"fwd_ret_{h}d"].transform("mean")
    lab_spec = catalog.table("gold.labels")
    deltars.write_dates(pa.Table.from_pandas(labels[lab_spec.column_names], preserve_index=False),
                        lab_spec, days, lake_root)
    graph["rank"] = graph["rank"].astype("int32")
    deltars.write_dates(pa.Table.from_pandas(graph, preserve_index=False), "gold.peer_graph",
                        snaps, lake_root)
    return {"days": days, "codes": codes, "snapshots": snaps}


#: the planted market the tests learn: strong enough to learn in seconds on 2 cores
MARKET = MarketConfig(stocks=200, start=dt.date(2024, 3, 1), end=dt.date(2024, 11, 29), seed=11,
                      clusters=10, signal=PlantedSignal(reversal=0.5, momentum=0.004,
                                                       earnings_drift=0.0008, lead_lag=0.6))
FEATURE_COLUMNS = [f"{f}_cs_z" for f in FEATURES]


#: a 1-fold CV that fits the tiny market: ~100 train days, 20-day embargo, 30 validation days
SMALL_RUN = ["train=cpu", "model.hidden=16", "model.heads=2", "cv.n_folds=1", "cv.val_days=30",
             "cv.min_train_days=40", "train.epochs=1",
             "data.features=[" + ",".join(FEATURE_COLUMNS) + "]"]
