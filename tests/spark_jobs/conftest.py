"""Shared fixtures of the feature-job tests: one small simulated market loaded into silver,
and the hand-built market of the context-feature tests.

``sim_silver`` simulates 48 stocks over ~300 JPX trading days (splits, halts, listings,
delistings and the 2020-style outage logic of ``gogooku3.market.sim``) once per test
session and turns it into silver tables through the same transforms ingestion uses
(``benchmarks/features.py: silver_frames``). Tests that write gold get their own lake
root holding a copy of that silver (``feature_lake``), so they never see each other's
gold tables.

``pdata``/``sdata`` hold the hand-built market of ``context_market`` (pandas, and Arrow in
the silver schemas); ``ser`` runs the build's per-code pass over it once per session.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from context_market import (
    DAYS,
    base_rows,
    flow_rows,
    hand_market,
    margin_rows,
    master_rows,
    statement_rows,
    to_arrow,
)
from sj_helpers import bench_module

from spark_jobs.features import market, series
from spark_jobs.features.handoff import Handoff

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
    simulated = simulate_market(
        MarketConfig(stocks=SIM_STOCKS, start=SIM_START, end=SIM_END, seed=11, split_rate=0.2)
    )
    frames = bench.silver_frames(simulated)
    root = tmp_path_factory.mktemp("sim_silver")
    bench.write_silver(frames, str(root))
    return SimSilver(market=simulated, frames=frames, lake_root=str(root),
                     days=list(simulated.days))


@pytest.fixture
def feature_lake(sim_silver, tmp_path) -> str:
    """A fresh lake root with the session's silver and no gold."""
    return sim_silver.copy_to(tmp_path / "lake")


# ---- the hand-built market of the context-feature tests (``context_market``) ----------


@pytest.fixture(scope="session")
def pdata():
    """The hand-built market's frames, as pandas."""
    prices, topix = hand_market()
    return {"prices": prices, "topix": topix, "master": master_rows(), "flows": flow_rows(),
            "margin": margin_rows(), "statements": statement_rows()}


@pytest.fixture(scope="session")
def sdata(pdata):
    """The same as silver rows (Arrow, catalogue schemas) where the build reads silver."""
    return {
        "prices": to_arrow(base_rows(pdata["prices"]), "silver.equities_prices_daily"),
        "topix": pdata["topix"],
        "margin": to_arrow(pdata["margin"], "silver.margin_interest"),
        "statements": to_arrow(pdata["statements"], "silver.fins_statements"),
    }


@pytest.fixture(scope="session")
def context_handoff(tmp_path_factory):
    """Where the per-code pass of ``ser`` writes its features."""
    return Handoff(str(tmp_path_factory.mktemp("handoff")))


@pytest.fixture(scope="session")
def ser(spark, sdata, context_handoff):
    """The build's per-code pass over every row: its trailing returns (computed and
    cached), its series and as-of features written to ``context_handoff`` (one period)."""
    sources = {"margin": sdata["margin"], "statements": sdata["statements"]}
    returns = series.series_features(spark, sdata["prices"], market.market_series(sdata["topix"]),
                                     DAYS, DAYS[0], DAYS[0], context_handoff,
                                     dict.fromkeys(DAYS, DAYS[0]), sources).cache()
    returns.count()
    return returns


@pytest.fixture(scope="session")
def per_code(ser, context_handoff) -> pd.DataFrame:
    """The per-code features the pass wrote (every row is in range)."""
    return context_handoff.read(DAYS[0]).to_pandas()

