"""Task bodies of ``atft_training_weekly`` around the train task: check the gold range,
evaluate against the baselines, register, promote.

Each calls the function of the same name in ``training.pipeline`` (imported inside the
task, so the DAG parses without the model's libraries); arguments and results are plain
JSON values passed by XCom.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gogooku3.airflow.dates import run_trade_date

log = logging.getLogger(__name__)


def check_range(context: Mapping[str, Any]) -> dict[str, Any]:
    """``training.pipeline.check_gold_range`` over ``params.start`` (empty: from the first
    gold date) .. ``params.end`` (empty: the run's JST date); the result carries the
    ``start``/``end`` the train task uses."""
    from training.pipeline import check_gold_range

    params = context.get("params") or {}
    start = params.get("start") or None
    end = params.get("end") or run_trade_date(context).isoformat()
    checked = check_gold_range(start, end)
    return {"start": start, "end": end, **checked}


def evaluate(run_id: str) -> dict[str, Any]:
    """``training.pipeline.evaluate_baselines``: the model table of run ``run_id``."""
    from training.pipeline import evaluate_baselines

    table = evaluate_baselines(run_id.strip())
    log.info("baselines of run %s (again: gogooku3 baselines --run %s)\n%s", run_id, run_id,
             table["table"])
    return table


def register(run_id: str) -> str:
    """``training.pipeline.register``: the new registry version of run ``run_id``."""
    from training.pipeline import register as register_run

    version = register_run(run_id.strip())
    log.info("run %s registered as version %s", run_id, version)
    return str(version)


def promote(version: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """``training.pipeline.promote`` (the champion gate); the model Asset event carries
    the version and the decision."""
    from gogooku3.airflow.assets import model_asset
    from training.pipeline import promote as promote_version

    decision = promote_version(version)
    log.info("version %s: %s", version, decision)
    events = context.get("outlet_events")
    if events is not None:
        events[model_asset()].extra = {"version": version, **decision}
    return decision
