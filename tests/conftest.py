"""One local SparkSession for the whole run (as Delta's own tests do), a fresh database per test."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from pyspark.sql import SparkSession

from reviewlake.config import Config, load_config
from reviewlake.spark import get_spark

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")  # pyspark.testing imports pyspark.pandas

TEST_SPARK_CONF = (
    "spark.conf={spark.ui.enabled: 'false', spark.ui.showConsoleProgress: 'false', "
    "spark.sql.shuffle.partitions: '2', spark.default.parallelism: '2'}"
)


@pytest.fixture(scope="session")
def spark_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark")


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
    session = get_spark(make_config(spark_home, "reviewlake_test"), "reviewlake tests")
    yield session
    session.stop()


@pytest.fixture
def cfg(spark: SparkSession, spark_home: Path) -> Config:
    """A config whose tables live in a database of this test's own."""
    config = make_config(spark_home, f"t_{uuid.uuid4().hex[:10]}")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {config.database}")
    return config
