"""Training fixtures: one tiny simulated market and its gold lake per test session."""

from __future__ import annotations

import datetime as dt

import pytest
import torch
from tr_lake import FEATURES, build_gold

from gogooku3.market.sim import MarketConfig, PlantedSignal, simulate_market

torch.set_num_threads(1)  # 2 threads thrash on a loaded 2-core machine

#: the planted market the tests learn: strong enough to learn in seconds on 2 cores
MARKET = MarketConfig(stocks=120, start=dt.date(2024, 1, 4), end=dt.date(2024, 12, 27), seed=11,
                      clusters=8, signal=PlantedSignal(reversal=0.25, momentum=0.004,
                                                       earnings_drift=0.0008, lead_lag=0.3))
FEATURE_COLUMNS = [f"{f}_cs_z" for f in FEATURES]


@pytest.fixture(scope="session")
def tiny_market():
    return simulate_market(MARKET)


@pytest.fixture(scope="session")
def gold_lake(isolated_lake, tiny_market):
    """Lake root holding gold.features/labels/peer_graph of ``tiny_market``."""
    root = isolated_lake / "lakes" / "training-gold"
    root.mkdir(parents=True, exist_ok=True)
    info = build_gold(tiny_market, str(root))
    return {"root": str(root), **info}
