"""What the peer graph can tell about the planted lead-lag term, beyond the peer features.

The simulator plants, in every stock's next-day return, 0.10 x the previous day's excess
return of the stock's latent cluster (``gogooku3.market.sim``). Models see that cluster
only through ``gold.peer_graph`` (10 correlation neighbours per snapshot): as the peer
features (1-hop means) or through the graph block. For sampled trade dates this script
scores graph-derived estimates of that term, each a mean of the stocks' centred
``ret_1d`` over some neighbourhood of the day's latest snapshot:

* Spearman correlation with the planted term (the simulator's ground truth), and
* RankIC against the next day's return (what a forecast built on it alone would score),
  with the paired difference to the 1-hop mean (mean +- standard error over dates).

Reads the lake built from ``--market`` (``make demo``'s by default); writes nothing.

    .venv/bin/python benchmarks/graph_ceiling.py --lake lake
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.stats import spearmanr

from gogooku3.lake import deltars
from gogooku3.market.sim import MarketConfig, simulate_market
from training.model.two_hop import two_hop_mean

MARKET = "{stocks: 500, start: 2023-01-04, end: 2025-12-30, seed: 7}"


def _row_mean(weights: np.ndarray, v: np.ndarray) -> np.ndarray:
    rows = weights.sum(1)
    return np.where(rows > 0, weights @ v / np.maximum(rows, 1e-12), 0.0)


def _z(e: np.ndarray) -> np.ndarray:
    return (e - e.mean()) / (e.std() + 1e-12)


def estimates(adjacency: np.ndarray, clusters: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """Neighbourhood means of ``v``; ``adjacency[i, j]`` = 1 when j is a peer of i. The
    two-hop estimate is the model's own ``two_hop_mean``."""
    a = adjacency
    peer, stock = np.nonzero(a.T)  # edge peer -> stock, as the model's edge_index
    edge_index = torch.as_tensor(np.stack([peer, stock]), dtype=torch.long)
    two_hop = two_hop_mean(torch.as_tensor(v, dtype=torch.float32).unsqueeze(1), edge_index,
                           len(v))[:, 0].double().numpy()
    one_hop = _row_mean(a, v)
    same = (clusters[:, None] == clusters[None, :]) * (1.0 - np.eye(len(v)))
    return {
        "1-hop mean (the peer feature)": one_hop,
        "1-hop, undirected": _row_mean(a + a.T, v),
        "2-hop with walks back to itself": _row_mean(a @ a, v),
        "2-hop undirected, itself left out": two_hop,
        "1-hop mean + 2-hop undirected (z-sum)": _z(one_hop) + _z(two_hop),
        "the true cluster (other members)": _row_mean(same, v),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lake", required=True, help="gold lake root (read only)")
    ap.add_argument("--market", default=MARKET, help="MarketConfig of the lake (YAML map)")
    ap.add_argument("--dates", type=int, default=100, help="trade dates sampled (every 5th)")
    a = ap.parse_args()
    market = simulate_market(MarketConfig(**yaml.safe_load(a.market)))
    planted = market.planted.frame(market.days)
    planted["date"] = pd.to_datetime(planted["Date"]).dt.date
    feats = deltars.read_table("gold.features", lake_root=a.lake,
                               columns=["date", "code", "ret_1d"]).to_pandas()
    labels = deltars.read_table("gold.labels", lake_root=a.lake,
                                columns=["date", "code", "fwd_ret_1d"]).to_pandas()
    graph = deltars.read_table("gold.peer_graph", lake_root=a.lake).to_pandas()
    snapshots = np.array(sorted(graph["date"].unique()))
    days = sorted(d for d in feats["date"].unique() if d >= snapshots[0])
    rows = []
    for d in days[::5][: a.dates]:
        day = feats[(feats["date"] == d) & feats["ret_1d"].notna()].set_index("code")
        codes = day.index.to_numpy()
        pos = pd.Series(np.arange(len(codes)), index=codes)
        snap = graph[graph["date"] == snapshots[snapshots <= d][-1]]
        snap = snap[snap["code"].isin(pos.index) & snap["peer_code"].isin(pos.index)]
        adjacency = np.zeros((len(codes), len(codes)))
        adjacency[pos[snap["code"]].to_numpy(), pos[snap["peer_code"]].to_numpy()] = 1.0
        term = planted[planted["date"] == d].set_index("Code")["lead_lag"].reindex(codes)
        nxt = labels[labels["date"] == d].set_index("code")["fwd_ret_1d"].reindex(codes)
        ok = (term.notna() & nxt.notna()).to_numpy()
        v = day["ret_1d"].to_numpy() - day["ret_1d"].mean()
        clusters = np.array([market.clusters[c] for c in codes])
        row = {"date": d}
        for name, e in estimates(adjacency, clusters, v).items():
            row[(name, "planted")] = spearmanr(e[ok], term.to_numpy()[ok])[0]
            row[(name, "next day")] = spearmanr(e[ok], nxt.to_numpy()[ok])[0]
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("date")
    base = frame[("1-hop mean (the peer feature)", "next day")]
    print(f"{len(frame)} dates, {frame.index[0]}..{frame.index[-1]}\n")
    print("| estimate | corr. with the planted term | RankIC next day | minus the 1-hop mean |")
    print("| --- | --- | --- | --- |")
    for name in dict.fromkeys(n for n, _ in frame.columns):
        diff = frame[(name, "next day")] - base
        print(f"| {name} | {frame[(name, 'planted')].mean():.3f} | "
              f"{frame[(name, 'next day')].mean():.4f} | "
              f"{diff.mean():+.4f} +- {diff.std(ddof=1) / np.sqrt(len(diff)):.4f} |")


if __name__ == "__main__":
    main()
