"""Helpers of the feature-job tests (imported by conftest and the test modules)."""

from __future__ import annotations

import importlib.util

import pandas as pd

from gogooku3.lake import deltars
from gogooku3.settings import PROJECT_ROOT


def bench_module():
    """``benchmarks/features.py`` as a module (its sim -> silver loaders)."""
    spec = importlib.util.spec_from_file_location(
        "bench_features", PROJECT_ROOT / "benchmarks" / "features.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_gold(lake_root: str, table: str) -> pd.DataFrame:
    """A gold table as pandas, sorted by its key columns (comparable across lakes)."""
    df = deltars.read_table(table, lake_root=lake_root).to_pandas()
    keys = [k for k in ("date", "code", "peer_code") if k in df.columns]
    return df.sort_values(keys).reset_index(drop=True)
