"""PNG plots of a model's validation metrics (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(daily: pd.DataFrame, deciles: dict[int, np.ndarray], out_dir: Path | str,
                 prefix: str = "") -> list[Path]:
    """Write ``rank_ic.png`` (daily RankIC and its 20-day mean per horizon),
    ``cumulative_long_short.png`` (cumulative top-minus-bottom decile return per horizon)
    and ``deciles.png`` (mean return per score decile per horizon); return their paths."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(9, 4))
    for h, g in daily.groupby("horizon"):
        g = g.sort_values("date")
        ax.plot(pd.to_datetime(g["date"]), g["rank_ic"].rolling(20, min_periods=1).mean(),
                label=f"{h}d (20-day mean)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_title("RankIC over time")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / f"{prefix}rank_ic.png", plt))
    fig, ax = plt.subplots(figsize=(9, 4))
    for h, g in daily.groupby("horizon"):
        g = g.sort_values("date")
        # an h-day spread earned every day overlaps h positions: scale to one day's share
        ax.plot(pd.to_datetime(g["date"]), (g["decile_spread"].fillna(0) / h).cumsum(),
                label=f"{h}d")
    ax.set_title("Cumulative long-short (top minus bottom decile, per day held)")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / f"{prefix}cumulative_long_short.png", plt))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(len(deciles), 1)
    for i, (h, values) in enumerate(sorted(deciles.items())):
        ax.bar(np.arange(10) + i * width, values, width=width, label=f"{h}d")
    ax.set_xticks(np.arange(10) + 0.4 - width / 2, [str(k + 1) for k in range(10)])
    ax.set_xlabel("score decile")
    ax.set_title("Mean forward return by decile")
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / f"{prefix}deciles.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
