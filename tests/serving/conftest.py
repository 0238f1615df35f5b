"""Serving fixtures: a private redis-server, a small gold lake written with delta-rs, Feast.

``serving_gold`` writes gold.features (the full catalogue schema) and gold.predictions
for 24 codes over 12 trade dates with numpy values that change every day, some nulls, and
one code that exists only in the first half (a delisting). No Spark: the tables are
written with ``gogooku3.lake.deltars`` exactly as the producers write them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sv_market import CODES, DATES, DELISTED

from gogooku3.lake import catalog, deltars
from gogooku3.lake.catalog import TableSpec
from gogooku3.settings import Settings, load_settings


def predictions_spec() -> TableSpec:
    """gold.predictions as the catalogue defines it (what ``gogooku3 predict`` writes)."""
    return catalog.table("gold.predictions")


@dataclass
class Gold:
    lake_root: str
    features: pd.DataFrame
    predictions: pd.DataFrame
    dates: list[dt.date]


def _panel(spec: TableSpec, rng: np.random.Generator) -> pd.DataFrame:
    rows = [(d, c) for d in DATES for c in CODES if c != DELISTED or d <= DATES[len(DATES) // 2]]
    keys = pd.DataFrame(rows, columns=["date", "code"])
    values = {}
    for col, typ in spec.columns[2:]:
        if typ in ("double", "float"):
            values[col] = rng.normal(size=len(keys))
            values[col][rng.random(len(keys)) < 0.05] = np.nan
    return pd.concat([keys, pd.DataFrame(values)], axis=1)


def _write(frame: pd.DataFrame, spec: TableSpec, lake_root: str) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False).cast(spec.arrow_schema())
    deltars.write_dates(table, spec, sorted(set(frame["date"])), lake_root=lake_root)


@pytest.fixture(scope="session")
def serving_gold(tmp_path_factory) -> Gold:
    rng = np.random.default_rng(25)
    root = str(tmp_path_factory.mktemp("serving_lake"))
    feats_spec = catalog.table("gold.features")
    features = _panel(feats_spec, rng)
    _write(features, feats_spec, root)
    pred_spec = predictions_spec()
    predictions = _panel(pred_spec, rng)
    predictions.insert(2, "model_name", "atft_gat_fan")
    predictions.insert(3, "model_version", "3")
    _write(predictions, pred_spec, root)
    return Gold(root, features, predictions, DATES)


@pytest.fixture(scope="session")
def serving_settings(serving_gold, redis_url, tmp_path_factory) -> Settings:
    return load_settings(
        lake_root=serving_gold.lake_root, redis_url=redis_url,
        feast_data_dir=str(tmp_path_factory.mktemp("feast")),
    )


@pytest.fixture(scope="session")
def materialized(serving_gold, serving_settings):
    """Gold exported over all its dates and materialized to Redis up to the last date."""
    from gogooku3.serving.feast_store import materialize

    return materialize(serving_gold.dates[-1], serving_gold.dates[0], settings=serving_settings)
