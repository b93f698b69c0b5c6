"""Airflow DAGs for reviewlake: nightly ingest -> preprocess -> score -> aggregate, and weekly training.

Install: put (or link) this file in Airflow's dags folder on a machine that has the repository at
$REVIEWLAKE_ROOT (default /opt/reviewlake) with its environment (./scripts/bootstrap.sh) and the
apache-airflow-providers-apache-spark package, and create the Spark connection `spark_reviewlake`
(Admin > Connections: type Spark, host spark://MASTER, port 7077; or yarn / k8s://...).

Each task is a SparkSubmitOperator built by `reviewlake.submit.operator_arguments` from the same config
that ./spark-submit.sh reads (profile $REVIEWLAKE_PROFILE, default cluster): the same Delta jars,
catalog, environment archive and settings. The stages are `pipeline --only STAGE`, so a failed stage
retries alone, every stage skips the work already done, and all of a DAG run's stages are recorded in
the pipeline_runs table under Airflow's run id.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta

ROOT = os.environ.get("REVIEWLAKE_ROOT", "/opt/reviewlake")
sys.path.insert(0, os.path.join(ROOT, "lib"))

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator  # noqa: E402

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator  # noqa: E402
    from airflow.sdk import DAG  # noqa: E402
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[no-redef]  # noqa: E402
    from airflow.operators.python import PythonOperator  # type: ignore[no-redef]  # noqa: E402

from reviewlake.submit import LIB_ZIP, build_lib_zip, operator_arguments  # noqa: E402

PROFILE = ["--profile", os.environ.get("REVIEWLAKE_PROFILE", "cluster")]
CONN_ID = os.environ.get("REVIEWLAKE_SPARK_CONN", "spark_reviewlake")
DEFAULTS = {"owner": "reviewlake", "retries": 2, "retry_delay": timedelta(minutes=10)}


def stage(task_id: str, *args: str) -> SparkSubmitOperator:
    """A task that submits ``./spark-submit.sh --profile P ARGS`` under Airflow's run id."""
    return SparkSubmitOperator(task_id=task_id, conn_id=CONN_ID, **operator_arguments([*PROFILE, *args]))


def lib_zip() -> PythonOperator:
    """The library zip every submission ships with --py-files, rebuilt from the checkout at each run."""
    return PythonOperator(task_id="build_lib_zip", python_callable=build_lib_zip, op_args=[LIB_ZIP])


with DAG("reviewlake_nightly", description="ingest, preprocess, score and aggregate the reviews",
         schedule="0 2 * * *", start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
         default_args=DEFAULTS, tags=["reviewlake"]) as nightly:
    steps = [stage(name, "pipeline", "--only", name, "--run-id", "{{ run_id }}")
             for name in ("ingest", "preprocess", "score", "aggregate")]
    lib_zip() >> steps[0] >> steps[1] >> steps[2] >> steps[3]

with DAG("reviewlake_weekly_train", description="train the models of pipeline.train, then rescore and rebuild gold",
         schedule="0 4 * * 0", start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
         default_args=DEFAULTS, tags=["reviewlake"]) as weekly:
    train = stage("train", "pipeline", "--only", "train", "--train", "--run-id", "{{ run_id }}")
    score = stage("score", "pipeline", "--only", "score", "--run-id", "{{ run_id }}")
    aggregate = stage("aggregate", "pipeline", "--only", "aggregate", "--run-id", "{{ run_id }}")
    lib_zip() >> train >> score >> aggregate
