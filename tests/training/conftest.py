"""Training fixtures: one tiny simulated market and its gold lake per test session."""

from __future__ import annotations

import os

import pytest
import torch
from tr_lake import MARKET, build_gold

from gogooku3.market.sim import simulate_market

torch.set_num_threads(1)  # 2 threads thrash on a loaded 2-core machine


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every training test starts from the same torch random state."""
    torch.manual_seed(0)



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
