"""The training pipeline as plain functions with XCom-friendly arguments and results.

The Airflow DAG calls them as separate tasks; ``gogooku3 train`` calls all of them in
order: ``check_gold_range`` -> ``train`` -> ``evaluate_baselines`` -> ``register`` ->
``promote``. Dates are ISO strings (or None for the tables' own range).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from training.config import compose


def _date(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def check_gold_range(start: str | None = None, end: str | None = None) -> dict:
    """``{table: {"first", "last", "dates", "version"}}`` for gold.features, gold.labels
    and gold.peer_graph; raises ``GoldCoverageError`` naming the table and dates when
    they do not cover ``[start, end]``."""
    from training.data.panel import check_gold_range as check

    return check(_date(start), _date(end))


def train(phase: str = "all", overrides: Sequence[str] = (), start: str | None = None,
          end: str | None = None) -> str:
    """Run the walk-forward CV for ``phase`` (or ``all`` phases); return the parent MLflow
    run id."""
    from training.experiment import run_cv

    return run_cv(list(overrides), phase, _date(start), _date(end))


def evaluate_baselines(run_id: str) -> dict:
    """Baselines and oracle on the folds of ``run_id``; the RankIC table as a dict (its
    markdown under ``"table"``)."""
    from training.baselines import evaluate_baselines as run
    from training.registry import setup_tracking

    setup_tracking()
    return run(run_id)


def baselines_table(run_id: str | None = None) -> str:
    """The RankIC table (markdown) that ``evaluate_baselines`` logged on CV run ``run_id``;
    without ``run_id``, on the latest CV run that has one. Raises LookupError when none."""
    import mlflow

    from training.baselines import TABLE_ARTIFACT, latest_run_with_table
    from training.registry import setup_tracking

    setup_tracking()
    run_id = run_id or latest_run_with_table()
    return mlflow.artifacts.load_text(f"runs:/{run_id}/{TABLE_ARTIFACT}").rstrip("\n")


def register(run_id: str) -> str:
    """Register the model of CV run ``run_id`` as a new version (alias ``challenger``);
    return the version."""
    import mlflow

    from training.registry import register as reg
    from training.registry import setup_tracking

    setup_tracking()
    run = mlflow.get_run(run_id)
    overrides = json.loads(run.data.params.get("run.overrides", "[]"))
    name = compose(overrides)["registry"]["model_name"]
    return reg(run.data.tags["model_uri"], run_id, name)


def promote(version: str, overrides: Sequence[str] = ()) -> dict:
    """Apply the champion gate to ``version`` (margin and horizon from config); return the
    decision with both RankIC numbers."""
    from training.registry import promote as gate
    from training.registry import setup_tracking

    setup_tracking()
    reg = compose(list(overrides))["registry"]
    return gate(str(version), reg["model_name"], int(reg["promote_horizon"]),
                float(reg["promote_margin"]))


def predict(date: str) -> dict:
    """Write the champion's gold.predictions for trade date ``date``."""
    from training.predict import predict_date

    return predict_date(_date(date))
