"""Run parameters the DAGs share (the trigger form in the UI, ``--conf`` on the CLI).

Kept free of heavy imports: DAG files import this at parse time. Each call returns new
``Param`` objects, so no two DAGs share (and mutate) one instance.
"""

from __future__ import annotations

from airflow.sdk import Param


def date_range_params(default: str = "the run's own JST trade date") -> dict[str, Param]:
    """``start``/``end``: the trade dates one run covers (ISO dates, both optional;
    ``gogooku3.airflow.dates`` resolves them). ``default`` says what an empty pair means."""
    return {
        "start": Param(None, type=["null", "string"], format="date",
                       description=f"first trade date (default: {default})"),
        "end": Param(None, type=["null", "string"], format="date",
                     description="last trade date (default: start)"),
    }
