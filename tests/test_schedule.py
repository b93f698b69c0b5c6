"""conf/schedule: the Airflow DAGs and the crontab.

Airflow is not in the environment (it pins half of it): the DAG file is executed with Airflow when it is
installed, and otherwise against a recorder of the few Airflow names it uses, which keeps each task's
arguments and the order between them. Either way the tasks' arguments are checked against what
./spark-submit.sh submits for the same stage.
"""

from __future__ import annotations

import importlib.util
import re
import runpy
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import pytest

from reviewlake.submit import JVM_ONLY, LIB_ZIP, split, stages
from tests.conftest import REPO

SCHEDULE = REPO / "conf" / "schedule"


class _Task:
    """What the DAG file hands an operator, and the tasks downstream of it."""

    def __init__(self, task_id: str, **kwargs: Any) -> None:
        self.task_id, self.kwargs, self.downstream = task_id, kwargs, []  # type: list[_Task]
        _Dag.current.tasks.append(self)  # type: ignore[union-attr]

    def __rshift__(self, other: Any) -> Any:
        for task in other if isinstance(other, list) else [other]:
            self.downstream.append(task)
        return other


class _Dag:
    current: "_Dag | None" = None

    def __init__(self, dag_id: str, **kwargs: Any) -> None:
        self.dag_id, self.kwargs, self.tasks = dag_id, kwargs, []  # type: list[_Task]

    def __enter__(self) -> "_Dag":
        _Dag.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        _Dag.current = None


@pytest.fixture
def dags(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The DAG file's DAGs by id: Airflow's own when installed, else recorded."""
    monkeypatch.setenv("REVIEWLAKE_ROOT", str(REPO))
    if importlib.util.find_spec("airflow") is None:
        modules = {
            "airflow": types.ModuleType("airflow"), "airflow.sdk": types.ModuleType("airflow.sdk"),
            "airflow.providers.apache.spark.operators.spark_submit": types.ModuleType("spark_submit"),
            "airflow.providers.standard.operators.python": types.ModuleType("python_operator"),
        }
        modules["airflow.sdk"].DAG = _Dag  # type: ignore[attr-defined]
        modules["airflow.providers.apache.spark.operators.spark_submit"].SparkSubmitOperator = _Task  # type: ignore[attr-defined]
        modules["airflow.providers.standard.operators.python"].PythonOperator = _Task  # type: ignore[attr-defined]
        for name, module in modules.items():
            monkeypatch.setitem(sys.modules, name, module)
    namespace = runpy.run_path(str(SCHEDULE / "reviewlake_dag.py"))
    yield {dag.dag_id: dag for dag in namespace.values() if hasattr(dag, "dag_id") and hasattr(dag, "tasks")}


def chain(dag: Any) -> list[str]:
    """The task ids in dependency order (each DAG here is one line of tasks)."""
    tasks = {t.task_id: t for t in dag.tasks}
    first = [t for t in dag.tasks if not any(t in other.downstream for other in dag.tasks)]
    assert len(first) == 1, [t.task_id for t in first]
    order, task = [], first[0]
    while True:
        order.append(task.task_id)
        if not task.downstream:
            return order
        assert len(task.downstream) == 1
        task = tasks[task.downstream[0].task_id]


def test_dags_submit_the_stages_nightly_and_train_weekly(dags: dict[str, Any]) -> None:
    assert set(dags) == {"reviewlake_nightly", "reviewlake_weekly_train"}
    nightly, weekly = dags["reviewlake_nightly"], dags["reviewlake_weekly_train"]
    assert (nightly.kwargs["schedule"], weekly.kwargs["schedule"]) == ("0 2 * * *", "0 4 * * 0")
    assert chain(nightly) == ["build_lib_zip", "ingest", "preprocess", "score", "aggregate"]
    assert chain(weekly) == ["build_lib_zip", "train", "score", "aggregate"]
    for dag in (nightly, weekly):
        for task in dag.tasks:
            if task.task_id == "build_lib_zip":
                assert task.kwargs["op_args"] == [LIB_ZIP]
                continue
            args = task.kwargs
            common, job_args = args["application_args"][:2], args["application_args"][2:]
            assert common == ["--profile", "cluster"] and args["application"] == str(REPO / "jobs" / "pipeline.py")
            assert job_args[job_args.index("--only") + 1] == task.task_id and "{{ run_id }}" in job_args
            assert ("--train" in job_args) == (task.task_id == "train")
            # The same settings ./spark-submit.sh passes: Delta's jars, the catalog, the library zip.
            assert args["conf"]["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
            assert "delta-spark_2.13" in args["jars"] and args["py_files"] == str(LIB_ZIP)
            assert "spark.master" not in args["conf"] and args["conn_id"] == "spark_reviewlake"
            assert args["env_vars"]["REVIEWLAKE_SHIP_ENV"] == "1"


def test_operator_arguments_follow_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from reviewlake.submit import operator_arguments

    args = operator_arguments(["--set", "spark.shuffle_partitions=5", "sql", "SELECT 1"])
    assert args["conf"]["spark.sql.shuffle.partitions"] == "5"
    assert args["env_vars"]["REVIEWLAKE_SHIP_ENV"] == ("0" if "sql" in JVM_ONLY else "1")
    assert args["application_args"] == ["--set", "spark.shuffle_partitions=5", "SELECT 1"]


def test_crontab_lines_run_known_stages() -> None:
    lines = [line for line in (SCHEDULE / "crontab").read_text().splitlines()
             if line.strip() and not line.startswith("#") and "=" not in line.split()[0]]
    assert len(lines) == 2
    for line in lines:
        fields = line.split()
        minute, hour, day, month, weekday = fields[:5]
        assert re.fullmatch(r"\d+", minute) and re.fullmatch(r"\d+", hour) and (day, month) == ("*", "*")
        command = line.split("./spark-submit.sh", 1)[1].split(">>")[0].split()
        _, stage, _ = split(command)
        assert stage in stages() and "flock" in line
