"""End to end on a real Spark standalone cluster on loopback: a master and a worker in their own JVMs,
jobs submitted with ./spark-submit.sh --profile cluster, the library shipped to executors as a zip."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pyspark
import pytest

from tests.conftest import FIXTURES, REPO

SPARK_HOME = Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{log.name} exited: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"'{text}' not in {log} after {seconds}s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A master and one 2-core worker; yields the master URL and the worker's folder of apps."""
    logs = tmp_path_factory.mktemp("cluster")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_WORKER_DIR": str(logs / "work")}
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        master_log = logs / "master.log"
        procs.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(free_port())], env=env, stdout=master_log.open("wb"), stderr=subprocess.STDOUT))
        wait_for(master_log, "I have been elected leader", procs[0])
        worker_log = logs / "worker.log"
        procs.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--cores", "2", "--memory", "2g",
             "--webui-port", str(free_port())], env=env, stdout=worker_log.open("wb"), stderr=subprocess.STDOUT))
        wait_for(worker_log, "Successfully registered with master", procs[1])
        yield url, logs / "work"
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def submit(home: Path, master: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REVIEWLAKE_HOME": str(home), "SPARK_MASTER": master}
    return subprocess.run(
        # A few shuffle partitions: the profile's 64 are meant for real data; here every tiny stage would
        # run 64 tasks on the worker's 2 cores.
        [str(REPO / "spark-submit.sh"), "--profile", "cluster", "--set", "spark.driver_memory=1g",
         "--set", "spark.shuffle_partitions=4",
         "--set", "spark.conf={spark.ui.enabled: 'false', spark.executor.memory: 1g}", *args],
        env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_ingest_and_preprocess_on_a_standalone_cluster(cluster: tuple[str, Path], tmp_path: Path) -> None:
    master, apps = cluster
    done = submit(tmp_path, master, "ingest", "--format", "amazon-json",
                  "--input", str(FIXTURES / "reviews_Musical_Instruments_5.json"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert '"rows_accepted": 2' in done.stdout
    # The worker launched executors for the job (one folder per application), with the library zip.
    assert [p.name for p in apps.glob("app-*/*/reviewlake.zip")]
    done = submit(tmp_path, master, "preprocess")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "bronze rows -> 2 silver rows" in done.stdout
    query = submit(tmp_path, master, "sql", "SELECT count(*) AS n, sum(size(aspects)) AS width "
                   "FROM reviews_silver")
    assert query.returncode == 0, query.stdout[-3000:]
    assert "|2  |20   |" in query.stdout
