"""Task bodies of ``daily_inference``: predict the trade dates the gold events carry,
load ClickHouse, materialize Feast. Each step is the ``gogooku3`` CLI of its package
(``predict``: training; ``serve``: serving) run as a child process."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from gogooku3.airflow.dates import triggered_window

log = logging.getLogger(__name__)

#: ``gogooku3 predict`` exit status when no model holds the alias "champion"
NO_CHAMPION = 3


def plan(context: Mapping[str, Any]) -> list[str] | None:
    """ISO trading days to predict: ``params.start``/``end``, else the ``trade_dates`` of
    the triggering gold events, else the run's own; ``None`` when none trades."""
    from gogooku3.jpx.calendar import TradingCalendar
    from gogooku3.settings import get_settings

    start, end = triggered_window(context)
    days = TradingCalendar.from_lake(get_settings().lake_uri).trading_days(start, end)
    if not days:
        log.info("inference %s..%s: no JPX trading day; skipping", start, end)
        return None
    return [d.isoformat() for d in days]


def predict(days: Sequence[str]) -> list[str]:
    """``gogooku3 predict --date D`` for each day, in order. Skips the task (and so the
    loads after it) when no champion is registered yet."""
    from airflow.exceptions import AirflowSkipException

    from gogooku3.airflow.processes import CommandFailed, gogooku3_cli, run_logged

    for day in days:
        argv = gogooku3_cli("predict", "--date", day)
        done = run_logged(argv, f"predict {day}")
        if done.returncode == NO_CHAMPION:
            log.warning("no champion model registered (predict exited %d): nothing to serve "
                        "until atft_training_weekly promotes one; skipping", NO_CHAMPION)
            raise AirflowSkipException("no champion registered for atft_gat_fan: train first")
        if done.returncode != 0:
            raise CommandFailed(f"predict {day} exited {done.returncode}: {' '.join(argv)}")
    return list(days)


def load_clickhouse(days: Sequence[str]) -> None:
    """``gogooku3 serve load-clickhouse`` over the predicted days."""
    from gogooku3.airflow.processes import gogooku3_cli, run_checked

    run_checked(gogooku3_cli("serve", "load-clickhouse", "--start", min(days), "--end",
                             max(days)), "load ClickHouse")


def materialize(days: Sequence[str]) -> None:
    """``gogooku3 serve materialize`` up to the last predicted day (Feast -> Redis)."""
    from gogooku3.airflow.processes import gogooku3_cli, run_checked

    run_checked(gogooku3_cli("serve", "materialize", "--end", max(days)), "materialize Feast")
