"""Spark tasks for DAGs: spark-submit with the lake's Delta/Ivy/event-log configuration.

``LakeSparkSubmitOperator`` is ``SparkSubmitOperator`` (connection ``spark_default``:
``local[*]`` on the embedded default, ``spark://host:7077`` in a cluster) whose ``conf``
is completed at *execution* time from ``gogooku3.lake.spark.spark_conf`` — the same dict
the in-process sessions and the tests use — so DAG parsing reads no settings and
creates no directories.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

#: spark_jobs/ entry points, relative to the project root
FEATURES_JOB = "spark_jobs/build_features.py"


def spark_submit_binary() -> str:
    """The ``spark-submit`` script pyspark installs in this interpreter's ``bin/``."""
    return os.path.join(os.path.dirname(sys.executable), "spark-submit")


def project_path(relative: str) -> str:
    from gogooku3.settings import PROJECT_ROOT

    return str(PROJECT_ROOT / relative)


class LakeSparkSubmitOperator(SparkSubmitOperator):
    """``spark-submit`` of a ``spark_jobs/`` entry point with the project's Spark conf.

    ``conf`` given to the operator overrides the shared entries. The binary is the
    ``spark-submit`` that pyspark installs beside this interpreter (``spark_binary``, an
    absolute path: the task's ``PATH`` does not matter), and the driver and the executors
    run this interpreter (``PYSPARK_PYTHON``/``PYSPARK_DRIVER_PYTHON`` in ``env_vars``,
    passed to the spark-submit process only) so they import ``gogooku3``;
    ``GOGOOKU_*``/``SPARK_*`` settings reach the job through the environment.
    """

    def __init__(self, *, job: str, **kwargs: Any):
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("name", f"gogooku3-{os.path.splitext(os.path.basename(job))[0]}")
        kwargs.setdefault("spark_binary", spark_submit_binary())
        kwargs["env_vars"] = {"PYSPARK_PYTHON": sys.executable,
                              "PYSPARK_DRIVER_PYTHON": sys.executable,
                              **(kwargs.get("env_vars") or {})}
        super().__init__(application=job, **kwargs)

    def execute(self, context):
        from gogooku3.lake.spark import spark_conf
        from gogooku3.settings import get_settings

        if not os.path.isabs(self.application):
            self.application = project_path(self.application)
        self.conf = {**spark_conf(get_settings()), **(self.conf or {})}
        return super().execute(context)
