"""Shared fixtures of the feature-job tests: one small simulated market loaded into silver.

``sim_silver`` simulates 48 stocks over ~300 JPX trading days (splits, halts, listings,
delistings and the 2020-style outage logic of ``gogooku3.market.sim``) once per test
session and turns it into silver tables through the same transforms ingestion uses
(``benchmarks/features.py: silver_frames``). Tests that write gold get their own lake
root holding a copy of that silver (``feature_lake``), so they never see each other's
gold tables.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sj_helpers import bench_module

SIM_START = dt.date(2024, 1, 4)
SIM_END = dt.date(2025, 3, 31)
SIM_STOCKS = 48


@dataclass
class SimSilver:
    """The simulated market, its silver frames (pandas) and a lake root holding them."""

    market: object
    frames: dict[str, pd.DataFrame]
    lake_root: str
    days: list[dt.date]

    def copy_to(self, root: Path, frames: dict[str, pd.DataFrame] | None = None) -> str:
        """A new lake root with this silver (or ``frames`` written instead)."""
        root.mkdir(parents=True, exist_ok=True)
        if frames is None:
            shutil.copytree(Path(self.lake_root) / "silver", root / "silver")
        else:
            self.write(frames, str(root))
        return str(root)

    @staticmethod
    def write(frames: dict[str, pd.DataFrame], lake_root: str) -> None:
        """Write silver ``frames`` into ``lake_root`` (replacing exactly their dates)."""
        bench_module().write_silver(frames, lake_root)


@pytest.fixture(scope="session")
def sim_silver(tmp_path_factory) -> SimSilver:
    """48 stocks × ~300 trading days in silver (one split for a fifth of the stocks)."""
    from gogooku3.market.sim import MarketConfig, simulate_market

    bench = bench_module()
    market = simulate_market(
        MarketConfig(stocks=SIM_STOCKS, start=SIM_START, end=SIM_END, seed=11, split_rate=0.2)
    )
    frames = bench.silver_frames(market)
    root = tmp_path_factory.mktemp("sim_silver")
    bench.write_silver(frames, str(root))
    return SimSilver(market=market, frames=frames, lake_root=str(root), days=list(market.days))


@pytest.fixture
def feature_lake(sim_silver, tmp_path) -> str:
    """A fresh lake root with the session's silver and no gold."""
    return sim_silver.copy_to(tmp_path / "lake")
