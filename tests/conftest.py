"""One local SparkSession for the whole run (as Delta's own tests do), a fresh database per test."""

from __future__ import annotations

import importlib.util
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest
from pyspark.sql import SparkSession

from reviewlake.config import Config, load_config
from reviewlake.spark import get_spark

if TYPE_CHECKING:
    from reviewlake.training.stage import TrainReport

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")  # pyspark.testing imports pyspark.pandas
# The jobs the tests run with spark-submit (and the benchmark scripts) are short-lived JVMs: with the
# client compiler only they start with about 40 % less CPU. Without tiered compilation the JVM reserves
# a 48 MB code cache, which the train benchmark's many queries filled ("Out of space in CodeCache"):
# keep the tiered size. The tests' own session runs all suite long and keeps the optimizing compiler
# (see the spark fixture).
os.environ.setdefault("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m")

TEST_SPARK_CONF = (
    "spark.conf={spark.ui.enabled: 'false', spark.ui.showConsoleProgress: 'false', "
    "spark.sql.shuffle.partitions: '2', spark.default.parallelism: '2'}"
)


@pytest.fixture(scope="session")
def spark_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark")


def load_job(stage: str) -> Any:
    """``jobs/<stage>.py`` as a module, to call its ``main`` in this process."""
    spec = importlib.util.spec_from_file_location(f"{stage}_job", REPO / "jobs" / f"{stage}.py")
    assert spec is not None and spec.loader is not None
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    return job


def make_config(home: Path, database: str, *overrides: str) -> Config:
    return load_config(
        "local",
        [
            f"paths.warehouse={home / 'warehouse'}",
            f"paths.metastore={home / 'metastore'}",
            f"paths.data={home / 'data'}",
            f"database={database}",
            TEST_SPARK_CONF,
            *overrides,
        ],
    )


@pytest.fixture(scope="session")
def spark(spark_home: Path) -> Iterator[SparkSession]:
    short_lived = os.environ.pop("SPARK_SUBMIT_OPTS", None)
    try:
        session = get_spark(make_config(spark_home, "reviewlake_test"), "reviewlake tests")
    finally:
        if short_lived is not None:
            os.environ["SPARK_SUBMIT_OPTS"] = short_lived
    yield session
    session.stop()


@pytest.fixture
def cfg(spark: SparkSession, spark_home: Path) -> Config:
    """A config whose tables live in a database of this test's own."""
    config = make_config(spark_home, f"t_{uuid.uuid4().hex[:10]}")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {config.database}")
    return config


# Training tests: a tiny 2-layer encoder built from a config, short texts, few epochs.
TINY = ["train.multitask.encoder=tiny", "train.multitask.head_lr=0.003", "train.multitask.lr=0.003",
        "train.multitask.batch_size=16", "train.multitask.max_length=64", "train.multitask.head_epochs=1",
        "train.multitask.epochs=2", "train.multitask.unfreeze_layers=2", "train.checkpoint_every=10",
        "preprocess.dedupe.near=false"]


@pytest.fixture(scope="session")
def train_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train")


def train_config(spark_home: Path, home: Path, *extra: str) -> Config:
    """The training tests' config: their own database, registry and checkpoints."""
    return make_config(spark_home, "train_test", f"paths.checkpoints={home / 'checkpoints'}",
                       f"paths.mlflow={home / 'mlflow'}", f"paths.logs={home / 'logs'}", *TINY, *extra)


@pytest.fixture(scope="session")
def train_silver(spark: SparkSession, spark_home: Path, train_home: Path) -> Config:
    """A silver table of 1,200 generated Amazon TSV reviews (ratings, aspects, sentiment, and the product
    category of each review, planted by the generator), shared by the training tests."""
    from reviewlake.generate import generate
    from reviewlake.ingest import ingest
    from reviewlake.preprocess import preprocess

    cfg = train_config(spark_home, train_home)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {cfg.database}")
    corpus = generate("amazon-tsv", train_home / "corpus", 1200, seed=5, malformed_share=0.0)
    ingest(spark, cfg, "amazon-tsv", corpus.files[0])
    preprocess(spark, cfg)
    return cfg


@pytest.fixture(scope="session")
def t_multitask(spark: SparkSession, train_silver: Config) -> "TrainReport":
    """Version 1 of t-multitask on the training tests' silver, trained by 2 barrier tasks through
    TorchDistributor (the tiny encoder)."""
    from reviewlake.families import train
    from reviewlake.training.stage import TrainRequest

    return train(spark, train_silver, TrainRequest(model="multitask", backend="torch-distributor", num_proc=2,
                                                   local_mode=False, use_gpu=False, name="t-multitask"))


JOINT = ["train.joint_topic.batch_size=64", "train.joint_topic.max_length=64", "train.joint_topic.pretrain_epochs=3", "train.joint_topic.epochs=4",
         "train.joint_topic.target_every=5", "train.joint_topic.top_terms=8"]


@pytest.fixture(scope="session")
def t_joint(spark: SparkSession, spark_home: Path, train_home: Path,
            train_silver: Config) -> "tuple[Config, TrainReport]":
    """joint-topic v1 (t-joint) on the training tests' silver (generated Amazon TSV reviews, each with the
    product category the generator planted), real MiniLM embeddings, 2 TorchDistributor tasks."""
    from reviewlake.families import train
    from reviewlake.training.stage import TrainRequest

    cfg = train_config(spark_home, train_home, *JOINT)
    return cfg, train(spark, cfg, TrainRequest(model="joint-topic", backend="torch-distributor", num_proc=2,
                                               local_mode=False, use_gpu=False, name="t-joint"))


# The pipeline and service tests' database: the training tests' silver, t-joint's embeddings and topics,
# and the registered t-multitask and t-joint champions as the models score and aggregate use.
PIPELINE = ["database=pipeline_test", "registry.prefix=t-", "aggregate.topic_model=joint"]


@pytest.fixture(scope="session")
def t_pipeline(spark: SparkSession, spark_home: Path, train_home: Path, train_silver: Config,
               t_multitask: "TrainReport", t_joint: "tuple[Config, TrainReport]") -> "tuple[Config, Any]":
    """A first pipeline run over that database (score and aggregate do the work): the config and its report."""
    from reviewlake.pipeline import PipelineRequest, run_pipeline

    cfg = train_config(spark_home, train_home, *PIPELINE)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {cfg.database}")
    for role in ("silver", "embeddings", "model_topics"):
        spark.sql(f"CREATE OR REPLACE TABLE {cfg.table(role)} USING delta AS SELECT * FROM {train_silver.table(role)}")
    return cfg, run_pipeline(spark, cfg, PipelineRequest())
