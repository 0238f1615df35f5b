"""Spark tasks for DAGs: spark-submit with the lake's Delta/Ivy/event-log configuration,
and the gold quality check that follows a feature build.

``LakeSparkSubmitOperator`` is ``SparkSubmitOperator`` (connection ``spark_default``:
``local[*]`` on the embedded default, ``spark://host:7077`` in a cluster) whose ``conf``
is completed at *execution* time from ``gogooku3.lake.spark.spark_conf`` — the same dict
the in-process sessions and the tests use — so DAG parsing reads no settings and
creates no directories.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

log = logging.getLogger(__name__)

#: spark_jobs/ entry points, relative to the project root
FEATURES_JOB = "spark_jobs/build_features.py"


def project_path(relative: str) -> str:
    from gogooku3.settings import PROJECT_ROOT

    return str(PROJECT_ROOT / relative)


class LakeSparkSubmitOperator(SparkSubmitOperator):
    """``spark-submit`` of a ``spark_jobs/`` entry point with the project's Spark conf.

    ``conf`` given to the operator overrides the shared entries. The driver and the
    executors run this interpreter (``PYSPARK_PYTHON``) so they import ``gogooku3``;
    ``GOGOOKU_*``/``SPARK_*`` settings reach the job through the environment.
    """

    def __init__(self, *, job: str, **kwargs: Any):
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("name", f"gogooku3-{os.path.splitext(os.path.basename(job))[0]}")
        super().__init__(application=job, **kwargs)

    def execute(self, context):
        from gogooku3.lake.spark import spark_conf
        from gogooku3.settings import get_settings

        if not os.path.isabs(self.application):
            self.application = project_path(self.application)
        self.conf = {**spark_conf(get_settings()), **(self.conf or {})}
        env = dict(self.env_vars or {})
        env.setdefault("PYSPARK_PYTHON", sys.executable)
        env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        bin_dir = os.path.dirname(sys.executable)
        if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
            # spark-submit ships with pyspark in this interpreter's bin/; the hook finds
            # the binary on the task's PATH and merges env_vars into os.environ
            os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        self.env_vars = env
        return super().execute(context)


class GoldCheckFailed(Exception):
    """Gold rows of a trade date failed a check (message: table, date, check)."""


def check_gold(start: dt.date, end: dt.date, lake_root: str | None = None,
               tables: tuple[str, ...] = ("gold.features", "gold.labels")) -> dict[str, int]:
    """Check what a feature build wrote for ``[start, end]``: every JPX trading day has
    rows in each table, keys ``(date, code)`` are non-null and unique, and labels cover
    exactly the features' keys. Raises ``GoldCheckFailed`` naming table, date and check;
    returns rows per table."""
    import pandas as pd

    from gogooku3.jpx.calendar import TradingCalendar
    from gogooku3.lake import deltars
    from gogooku3.settings import get_settings

    lake_root = lake_root or get_settings().lake_uri
    days = TradingCalendar.from_lake(lake_root).trading_days(start, end)
    problems: list[str] = []
    keys: dict[str, pd.DataFrame] = {}
    for table in tables:
        try:
            df = deltars.read_table(table, start, end, columns=["date", "code"],
                                    lake_root=lake_root).to_pandas()
        except deltars.TableNotFound:
            problems.append(f"{table} on {start}..{end}: table_exists (no Delta table)")
            continue
        keys[table] = df
        for d in days:
            if not (df["date"] == d).any():
                problems.append(f"{table} on {d}: rows_present (no rows for a trading day)")
        nulls = df[df["code"].isna() | df["date"].isna()]
        for d in sorted(set(nulls["date"].dropna())):
            problems.append(f"{table} on {d}: not_null_key ({(nulls['date'] == d).sum()} rows)")
        dup = df[df.duplicated(["date", "code"], keep=False)]
        for d in sorted(set(dup["date"])):
            problems.append(f"{table} on {d}: unique_key ({(dup['date'] == d).sum()} rows)")
    if "gold.features" in keys and "gold.labels" in keys:
        f = keys["gold.features"].assign(_f=1)
        lab = keys["gold.labels"].assign(_l=1)
        m = f.merge(lab, on=["date", "code"], how="outer")
        off = m[m["_f"].isna() | m["_l"].isna()]
        for d in sorted(set(off["date"])):
            problems.append(f"gold.labels on {d}: same_keys_as_features "
                            f"({(off['date'] == d).sum()} codes differ)")
    if problems:
        raise GoldCheckFailed("gold check failed:\n  " + "\n  ".join(problems))
    rows = {t: len(df) for t, df in keys.items()}
    log.info("gold check %s..%s passed: %s over %d trading days", start, end, rows, len(days))
    return rows
