"""Training fixtures: one tiny simulated market and its gold lake per test session."""

from __future__ import annotations

import datetime as dt
import os

import pytest
import torch
from tr_lake import FEATURES, build_gold

from gogooku3.market.sim import MarketConfig, PlantedSignal, simulate_market

torch.set_num_threads(1)  # 2 threads thrash on a loaded 2-core machine

#: the planted market the tests learn: strong enough to learn in seconds on 2 cores
MARKET = MarketConfig(stocks=200, start=dt.date(2024, 3, 1), end=dt.date(2024, 11, 29), seed=11,
                      clusters=10, signal=PlantedSignal(reversal=0.5, momentum=0.004,
                                                       earnings_drift=0.0008, lead_lag=0.6))
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


#: a 1-fold CV that fits the tiny market: ~100 train days, 20-day embargo, 30 validation days
SMALL_RUN = ["train=cpu", "model.hidden=16", "model.heads=2", "cv.n_folds=1", "cv.val_days=30",
             "cv.min_train_days=40", "train.epochs=1",
             "data.features=[" + ",".join(FEATURE_COLUMNS) + "]"]


@pytest.fixture(scope="session")
def tracking(isolated_lake):
    """A temporary MLflow store (sqlite + artifact dir) for the whole session."""
    import mlflow

    from gogooku3.settings import get_settings

    root = isolated_lake / "mlflow"
    root.mkdir(exist_ok=True)
    uri = f"sqlite:///{root}/mlflow.db"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    get_settings.cache_clear()
    mlflow.set_tracking_uri(uri)
    yield uri
    if old is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old
    get_settings.cache_clear()
