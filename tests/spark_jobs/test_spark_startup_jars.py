"""The jars recorded after one Ivy resolution replace ``spark.jars.packages`` only while
every recorded file exists (``gogooku3.lake.spark_startup``), recorded from a session."""

from __future__ import annotations

from pathlib import Path

import pytest

from gogooku3.lake import spark_startup
from gogooku3.lake.spark import ivy_dir, spark_conf, spark_packages
from gogooku3.settings import load_settings

pytestmark = pytest.mark.spark


def test_recorded_jars_replace_the_ivy_resolution_while_their_files_exist(spark, tmp_path):
    settings = load_settings(cache_dir=str(tmp_path / "cache"))
    packages = spark_packages(settings)
    conf = spark_conf(settings)  # no record yet: Ivy resolves
    assert conf["spark.jars.packages"] == ",".join(packages) and "spark.jars" not in conf
    session_jars = [j.removeprefix("file://").removeprefix("file:")
                    for j in spark.sparkContext.getConf().get("spark.jars").split(",")]
    assert any("delta-spark" in j for j in session_jars)
    spark_startup.record_jars(spark, ivy_dir(settings), packages)
    conf = spark_conf(settings)
    assert conf["spark.jars"].split(",") == session_jars
    assert "spark.jars.packages" not in conf and "spark.jars.ivy" not in conf
    # another package set (an S3 lake) has no record: it resolves
    s3 = load_settings(cache_dir=str(tmp_path / "cache"), lake_root="s3://bucket/lake")
    assert "hadoop-aws" in spark_conf(s3)["spark.jars.packages"]
    # a record naming a file that is gone (a cleaned cache) no longer holds
    record = next(ivy_dir(settings).glob("resolved-*.txt"))
    record.write_text(record.read_text() + str(tmp_path / "gone.jar") + "\n")
    assert spark_startup.resolved_jars(ivy_dir(settings), packages) is None
    assert "spark.jars.packages" in spark_conf(settings)
    assert Path(session_jars[0]).is_file()
