"""The launchers that run one train function on Spark: TorchDistributor and Horovod on Spark.

Both run the same function with the same spec; only ``spec['comm']`` (how ranks talk) and
``spec['reader']`` (pyarrow or Petastorm) differ.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

BACKENDS = ("torch-distributor", "horovod")


def task_slots(spark: SparkSession) -> int:
    """How many tasks the cluster can run at once now (what a barrier stage needs)."""
    sc = spark.sparkContext._jsc.sc()
    return int(sc.maxNumConcurrentTasks(sc.resourceProfileManager().defaultResourceProfile()))


def check_slots(spark: SparkSession, num_proc: int, local_mode: bool) -> None:
    """Fail at once when ``num_proc`` tasks cannot run together.

    A barrier stage wider than the free slots is not refused: Spark retries it for about ten minutes
    and then fails (SPARK-24819).
    """
    if local_mode:
        return
    slots = task_slots(spark)
    if num_proc > slots:
        raise ValueError(f"--num-proc {num_proc} needs {num_proc} task slots but the cluster has {slots} "
                         f"({spark.sparkContext.master}); lower --num-proc, add executors or cores, or "
                         "use --local-mode to run the processes on the driver")


def run(spark: SparkSession, backend: str, fn: Callable[[dict[str, Any]], dict[str, Any]], spec: dict[str, Any],
        num_proc: int, local_mode: bool, use_gpu: bool) -> dict[str, Any]:
    """Run ``fn(spec)`` on ``num_proc`` processes with ``backend``; return rank 0's result.

    Call :func:`check_slots` first: this does not.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; one of: {', '.join(BACKENDS)}")
    if backend == "torch-distributor":
        from pyspark.ml.torch.distributor import TorchDistributor

        spec = {**spec, "comm": "ddp", "reader": "pyarrow"}
        # use_gpu defaults to true in TorchDistributor and fails on a CPU machine: always pass it.
        result = TorchDistributor(num_processes=num_proc, local_mode=local_mode, use_gpu=use_gpu).run(fn, spec)
        if result is None:
            raise RuntimeError("the training processes returned nothing")
        return dict(result)
    import horovod.spark

    spec = {**spec, "comm": "horovod", "reader": "petastorm"}
    results = horovod.spark.run(fn, args=(spec,), num_proc=num_proc, use_gloo=True, verbose=0)
    return dict(results[0])
