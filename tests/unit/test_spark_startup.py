"""What a Spark start reuses (``gogooku3.lake.spark_startup``): the driver starts from the
class-data archive only when one exists; the Python workers' modules load no settings.
The jar record is tested with a session in ``tests/spark_jobs/test_spark_startup_jars.py``."""

from __future__ import annotations

import subprocess
import sys

from gogooku3.lake import spark_startup
from gogooku3.lake.spark import spark_conf, spark_packages
from gogooku3.settings import PROJECT_ROOT, load_settings


def test_the_driver_starts_from_the_class_archive_only_when_there_is_one(tmp_path):
    settings = load_settings(cache_dir=str(tmp_path / "cache"))
    assert "spark.driver.extraJavaOptions" not in spark_conf(settings)
    archive = spark_startup.class_archive(tmp_path / "cache", spark_packages(settings))
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"\0")
    assert spark_conf(settings)["spark.driver.extraJavaOptions"] == f"-XX:SharedArchiveFile={archive}"
    other = spark_startup.class_archive(tmp_path / "cache", [*spark_packages(settings), "x:y:1"])
    assert other != archive


def test_the_python_workers_kernels_load_no_settings():
    """A worker unpickling the feature passes imports these modules; pydantic settings
    and the Delta layer would add seconds to every worker's start."""
    code = ("import sys, spark_jobs.features.series, spark_jobs.features.crosssection, "
            "gogooku3.lake.worker_files;"
            "print(sorted(m for m in ('gogooku3.settings', 'pydantic_settings', "
            "'gogooku3.lake.deltars', 'deltalake') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PROJECT_ROOT, check=True).stdout.strip()
    assert out == "[]"
