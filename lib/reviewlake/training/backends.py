"""The launchers that run one train function on Spark: TorchDistributor and Horovod on Spark.

Both run the same function with the same :class:`~reviewlake.training.spec.RunSpec`; only its
``comm`` (how ranks talk) and ``reader`` (pyarrow or Petastorm) differ.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from pyspark.sql import SparkSession

from reviewlake.spark import is_local

if TYPE_CHECKING:
    from reviewlake.training.spec import RunSpec

log = logging.getLogger(__name__)

BACKENDS = ("torch-distributor", "horovod")
REGISTER_WAIT_S = 20.0  # how long a cluster's executors may take to register before slots are counted


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
    # Executors of a cluster register a few seconds after the session starts: give them time.
    deadline = time.monotonic() + (0 if str(spark.sparkContext.master).startswith("local[") else REGISTER_WAIT_S)
    while num_proc > slots and time.monotonic() < deadline:
        time.sleep(1)
        slots = task_slots(spark)
    if num_proc > slots:
        raise ValueError(f"--num-proc {num_proc} needs {num_proc} task slots but the cluster has {slots} "
                         f"({spark.sparkContext.master}); lower --num-proc, add executors or cores, or "
                         "use --local-mode to run the processes on the driver")


def task_gpus(spark: SparkSession, num_proc: int) -> list[dict[str, Any]]:
    """What each of ``num_proc`` barrier tasks (the training processes' slots) receives: its host, the
    GPU addresses Spark assigned it, and the CUDA_VISIBLE_DEVICES TorchDistributor would set from them."""

    def probe(_: Any) -> Any:
        import socket

        from pyspark import BarrierTaskContext
        from pyspark.ml.torch.distributor import _get_gpus_owned

        context = BarrierTaskContext.get()
        resources = context.resources()
        gpus = list(resources["gpu"].addresses) if "gpu" in resources else []
        owned = ",".join(_get_gpus_owned(context)) if gpus else ""
        yield {"task": context.partitionId(), "host": socket.gethostname(), "gpus": gpus,
               "cuda_visible_devices": owned}

    rdd = spark.sparkContext.parallelize(range(num_proc), num_proc)
    return sorted(rdd.barrier().mapPartitions(probe).collect(), key=lambda r: r["task"])


def check_gpus(spark: SparkSession, num_proc: int, local_mode: bool) -> list[dict[str, Any]]:
    """Fail at once, in one line, unless each training process will have a GPU of its own (rather than
    deep in a rank's CUDA set-up); what each task received (the driver's GPUs in local mode)."""
    conf = spark.sparkContext.getConf()
    master = str(spark.sparkContext.master)
    if local_mode or is_local(master):  # not local-cluster: it has executors
        resources = spark.sparkContext.resources
        gpus = list(resources["gpu"].addresses) if "gpu" in resources else []
        if len(gpus) < num_proc:
            raise ValueError(f"--use-gpu with {num_proc} process(es) on the driver, which has {len(gpus)} GPU(s) "
                             f"(spark.driver.resource.gpu.amount={conf.get('spark.driver.resource.gpu.amount', 'unset')}"
                             "); set spark.gpu.enabled=true on a machine with GPUs, or lower --num-proc")
        return [{"task": i, "host": "driver", "gpus": [g], "cuda_visible_devices": g} for i, g in enumerate(gpus[:num_proc])]
    if float(conf.get("spark.task.resource.gpu.amount", "0")) < 1:
        raise ValueError("--use-gpu needs Spark's GPU scheduling (spark.task.resource.gpu.amount is unset): "
                         "--set spark.gpu.enabled=true, and GPUs on the workers (see spark.gpu in conf/base.yaml)")
    found = task_gpus(spark, num_proc)
    missing = [r["task"] for r in found if not r["gpus"]]
    if missing:
        raise ValueError(f"--use-gpu: training task(s) {missing} received no GPU from Spark")
    seen: dict[tuple[str, str], int] = {}
    for r in found:
        for gpu in r["gpus"]:
            if (r["host"], gpu) in seen:
                raise ValueError(f"--use-gpu: tasks {seen[(r['host'], gpu)]} and {r['task']} share GPU {gpu} on "
                                 f"{r['host']}: check spark.executor.resource.gpu.amount and the discovery script")
            seen[(r["host"], gpu)] = r["task"]
    return found


def preflight(spark: SparkSession, request: Any) -> None:
    """What a train request checks before it writes anything: enough task slots for its processes and,
    with ``use_gpu``, a GPU for each (see :func:`check_slots`, :func:`check_gpus`)."""
    local = request.local_mode and request.backend == "torch-distributor"
    check_slots(spark, request.num_proc, local)
    if request.use_gpu:
        for r in check_gpus(spark, request.num_proc, local):
            log.info("training process %d on %s: GPU(s) %s", r["task"], r["host"], ",".join(r["gpus"]))


def run(spark: SparkSession, backend: str, fn: Callable[["RunSpec"], dict[str, Any]], spec: "RunSpec",
        num_proc: int, local_mode: bool, use_gpu: bool) -> dict[str, Any]:
    """Run ``fn(spec)`` on ``num_proc`` processes with ``backend``; return rank 0's result.

    Call :func:`check_slots` first: this does not.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}'; one of: {', '.join(BACKENDS)}")
    if backend == "torch-distributor":
        from pyspark.ml.torch.distributor import TorchDistributor

        spec = spec.with_(comm="ddp", reader="pyarrow")
        # use_gpu defaults to true in TorchDistributor and fails on a CPU machine: always pass it.
        result = TorchDistributor(num_processes=num_proc, local_mode=local_mode, use_gpu=use_gpu).run(fn, spec)
        if result is None:
            raise RuntimeError("the training processes returned nothing")
        return dict(result)
    import horovod.spark

    spec = spec.with_(comm="horovod", reader="petastorm")
    results = horovod.spark.run(fn, args=(spec,), num_proc=num_proc, use_gloo=True, verbose=0)
    return dict(results[0])
