"""The GPU path without a GPU, the way Spark's own distributor tests check it: a local-cluster whose
discovery script reports GPU addresses, and the resources each training task receives."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import SparkSession

from reviewlake.config import load_config
from reviewlake.spark import gpu_conf
from reviewlake.training.backends import check_gpus
from tests.conftest import REPO

SPARK_HOME = Path(pyspark.__file__).parent


def test_gpu_settings_become_spark_resource_requests() -> None:
    assert gpu_conf(load_config("local")) == {}
    cluster = gpu_conf(load_config("cluster", ["spark.gpu.enabled=true", "spark.gpu.executor_amount=4"]))
    assert cluster["spark.executor.resource.gpu.amount"] == "4" and cluster["spark.task.resource.gpu.amount"] == "1"
    assert Path(cluster["spark.executor.resource.gpu.discoveryScript"]) == REPO / "scripts" / "gpu-discovery.sh"
    local = gpu_conf(load_config("local", ["spark.gpu.enabled=true"]))
    assert set(local) == {"spark.driver.resource.gpu.amount", "spark.driver.resource.gpu.discoveryScript"}


def test_the_discovery_script_reports_no_gpu_on_a_cpu_machine() -> None:
    done = subprocess.run([str(REPO / "scripts" / "gpu-discovery.sh")], capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found["name"] == "gpu" and isinstance(found["addresses"], list)


def test_use_gpu_without_gpus_fails_in_one_line(spark: SparkSession) -> None:
    with pytest.raises(ValueError, match=r"on the driver, which has 0 GPU\(s\)"):
        check_gpus(spark, 1, local_mode=True)


@pytest.mark.slow
def test_each_training_task_gets_a_gpu_of_its_own_on_a_local_cluster(tmp_path: Path) -> None:
    script = tmp_path / "fake-gpus.sh"
    script.write_text('#!/usr/bin/env bash\necho \'{"name": "gpu", "addresses": ["0", "1"]}\'\n')
    script.chmod(0o755)
    # One worker with 2 cores and 2 GPUs; its executor takes both, each task one.
    conf = (f"spark.conf={{spark.worker.resource.gpu.amount: '2', spark.worker.resource.gpu.discoveryScript: "
            f"'{script}', spark.executor.memory: 512m, spark.test.home: '{SPARK_HOME}', spark.ui.enabled: 'false'}}")
    env = {**os.environ, "REVIEWLAKE_HOME": str(tmp_path), "SPARK_HOME": str(SPARK_HOME)}
    done = subprocess.run(
        [str(REPO / "spark-submit.sh"), "--set", "spark.master=local-cluster[1,2,1024]", "--set", "spark.gpu.enabled=true",
         "--set", "spark.gpu.executor_amount=2", "--set", f"spark.gpu.discovery_script={script}", "--set", conf,
         "--set", "spark.driver_memory=1g", "gpus", "--num-proc", "2"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tasks = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [t["task"] for t in tasks] == [0, 1]
    assert sorted(g for t in tasks for g in t["gpus"]) == ["0", "1"]
    # TorchDistributor would point each process at its own GPU.
    assert all(t["cuda_visible_devices"] == t["gpus"][0] and len(t["gpus"]) == 1 for t in tasks)
