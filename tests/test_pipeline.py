"""pipeline: the stages in order under one run id, each skipping the work already done, recorded in
pipeline_runs; and the environment archive that cluster executors unpack."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from reviewlake.config import Config, ConfigError
from reviewlake.pipeline import PipelineReport, PipelineRequest, run_pipeline


def test_pipeline_runs_each_stage_once_then_skips_what_is_done(
        spark: SparkSession, t_pipeline: tuple[Config, PipelineReport]) -> None:
    cfg, first = t_pipeline  # the first run: see conftest
    silver = spark.table(cfg.table("silver")).count()
    status = {s.stage: s.status for s in first.stages}
    assert status == {"ingest": "skipped", "preprocess": "skipped", "train": "skipped", "score": "done",
                      "aggregate": "done"}, first.summary()
    rows = {s.stage: s.rows for s in first.stages}
    assert rows["score"] == {"review_scores": 2 * silver}
    assert rows["aggregate"]["topic_sentiment"] == 4 and len(rows["aggregate"]) == 5
    assert "no inputs in pipeline.inputs" in first.summary() and "not asked (pipeline --train)" in first.summary()

    again = run_pipeline(spark, cfg, PipelineRequest())
    assert all(s.status == "skipped" for s in again.stages), again.summary()
    assert "every gold table is built from the current scores" in again.summary()

    # One new review: score scores only it (with each model), aggregate rebuilds.
    spark.table(cfg.table("silver")).limit(1).withColumn("review_id", F.lit("new-review")).write.format(
        "delta").mode("append").saveAsTable(cfg.table("silver"))
    third = run_pipeline(spark, cfg, PipelineRequest(skip=("ingest",)))
    status = {s.stage: s.status for s in third.stages}
    assert (status["ingest"], status["score"], status["aggregate"]) == ("skipped", "done", "done"), third.summary()
    assert {s.stage: s.rows for s in third.stages}["score"] == {"review_scores": 2 * silver + 2}
    assert "2 reviews scored" not in third.summary() and third.summary().count("1 reviews scored") == 2

    runs = spark.table(cfg.table("pipeline_runs"))
    assert runs.select("run_id").distinct().count() == 3 and runs.count() == 15
    assert [r["stage"] for r in runs.where(F.col("run_id") == third.run_id).orderBy("started_at").collect()] == [
        "ingest", "preprocess", "train", "score", "aggregate"]


def test_pipeline_refuses_unknown_models_and_stages(spark: SparkSession, cfg: Config) -> None:
    with pytest.raises(ConfigError, match="unknown model type"):
        run_pipeline(spark, cfg, PipelineRequest(train=True, models=("gpt",)))
    with pytest.raises(ConfigError, match="unknown backend in multitask:ray; one of: torch-distributor, horovod"):
        run_pipeline(spark, cfg, PipelineRequest(train=True, models=("multitask:ray",)))
    with pytest.raises(ConfigError, match="linear:horovod: linear trains with Spark MLlib, through no backend"):
        run_pipeline(spark, cfg, PipelineRequest(train=True, models=("linear:horovod",)))
    with pytest.raises(ConfigError, match="pipeline --skip scoring: unknown stage"):
        run_pipeline(spark, cfg, PipelineRequest(skip=("scoring",)))


def test_pack_writes_a_venv_archive_spark_can_unpack(cfg: Config, tmp_path: Path) -> None:
    from reviewlake.pack import pack_environment

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / "lib" / "python3.11" / "site-packages" / "mypy").mkdir(parents=True)
    (venv / "lib" / "python3.11" / "site-packages" / "mypy" / "big.py").write_text("x = 1\n")
    report = pack_environment(cfg, tmp_path / "out" / "env.tar.gz", prefix=venv)
    assert report.archive == tmp_path / "out" / "env.tar.gz" and report.bytes > 0
    with tarfile.open(report.archive) as tar:
        names = tar.getnames()
    assert "bin/python" in names and "pyvenv.cfg" in names
    assert not any("mypy" in n for n in names)                    # spark.pack_exclude
    assert list((tmp_path / "out").iterdir()) == [report.archive]  # no temporary file left
    with pytest.raises(ConfigError, match="must end in .tar.gz"):
        pack_environment(cfg, tmp_path / "env.zip", prefix=venv)
    with pytest.raises(ConfigError, match="is not a virtual environment"):
        pack_environment(cfg, tmp_path / "x.tar.gz", prefix=tmp_path)
