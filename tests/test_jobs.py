"""The jobs as a user runs them: ./spark-submit.sh in fresh processes, a table queried from another."""

from __future__ import annotations

import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO


def submit(home: Path, *args: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REVIEWLAKE_HOME": str(home), **env_vars}
    return subprocess.run([str(REPO / "spark-submit.sh"), "--set", "spark.conf={spark.ui.enabled: 'false'}",
                           *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


def test_ingest_then_query_from_a_new_process(home: Path) -> None:
    done = submit(home, "ingest", "--format", "amazon-tsv",
                  "--input", str(FIXTURES / "amazon_reviews_us_Books_v1_00.tsv"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"rows_read": 4' in done.stdout and '"rows_quarantined": 2' in done.stdout
    # One new process for the queries (the standalone-cluster test runs a query given inline).
    script = home / "q.sql"
    script.write_text("SELECT product_id, rating FROM reviews_bronze ORDER BY product_id;\n"
                      "-- reasons; one statement per ';'\nSELECT reason, count(*) AS n FROM reviews_quarantine "
                      "GROUP BY reason ORDER BY reason;\nSELECT count(*) AS runs FROM ingest_runs;\n")
    from_file = submit(home, "sql", "-f", str(script))
    assert from_file.returncode == 0, from_file.stderr[-3000:]
    assert "|0385730586|4     |" in from_file.stdout and "|0811828964|3     |" in from_file.stdout
    assert "|unparseable|1  |" in from_file.stdout and "|wrong_type |1  |" in from_file.stdout
    assert "|1   |" in from_file.stdout


def test_bad_input_gives_one_line_errors(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.ft.txt"
    done = submit(home, "ingest", "--format", "fasttext", "--input", str(missing))
    assert done.returncode == 2
    assert f"error: input path {missing} does not exist" in done.stderr.splitlines()
    assert "error:" not in done.stdout
    bad_key = submit(home, "--set", "spark.shuffle_partitons=3", "ingest", "--format", "fasttext",
                     "--input", str(missing))
    assert bad_key.returncode == 2 and "spark.shuffle_partitons: Extra inputs are not permitted" in bad_key.stderr
    unknown = submit(home, "ingest", "--format", "xml", "--input", str(missing))
    assert unknown.returncode == 2 and "invalid choice: 'xml'" in unknown.stdout + unknown.stderr
    stage = submit(home, "frobnicate")
    assert stage.returncode == 2 and "unknown stage 'frobnicate'" in stage.stderr


def test_every_job_answers_help(home: Path) -> None:
    from reviewlake.submit import stages

    # A short Python process per job, no Spark: a few at a time.
    with ThreadPoolExecutor(4) as pool:
        answers = dict(zip(stages(), pool.map(lambda stage: submit(home, stage, "--help"), stages())))
    for stage, done in answers.items():
        assert done.returncode == 0 and "--profile" in done.stdout and "usage:" in done.stdout, (stage, done.stderr[-2000:])


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The job failed with exit 2 and exactly one ``error:`` line on stderr, and no Java trace."""
    assert done.returncode == 2, (done.stdout[-2000:], done.stderr[-2000:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "\tat " not in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr
    return errors[0]


def test_corrupt_bz2_is_one_line(home: Path, tmp_path: Path) -> None:
    import bz2

    whole = bz2.compress(b"__label__2 Good: fine\n" * 20000)
    cut = tmp_path / "train.ft.txt.bz2"
    cut.write_bytes(whole[: len(whole) // 2])
    line = one_error_line(submit(home, "ingest", "--format", "fasttext", "--input", str(cut)))
    assert line.startswith(f"error: {cut}: corrupt or truncated compressed data")


def test_config_errors_are_one_line(home: Path) -> None:
    line = one_error_line(submit(home, "--set", "spark.conf={a: [1,", "sql", "SELECT 1"))
    assert "the value is not valid YAML" in line
    line = one_error_line(submit(home, "--set", "tables.silver=reviews_bronze", "preprocess"))
    assert "tables.bronze and tables.silver are both 'reviews_bronze'" in line
    line = one_error_line(submit(home, "--set", "database=no-dash", "sql", "SELECT 1"))
    assert "database: String should match pattern" in line


def test_a_second_job_on_the_embedded_metastore_is_one_line(tmp_path: Path) -> None:
    def hold(seconds: int) -> subprocess.Popen[str]:
        """A process that takes the metastore's lock as a job does, says so, and keeps it ``seconds``."""
        return subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "python"), "-c",
             "import sys, time; sys.path.insert(0, 'lib'); from reviewlake.config import load_config; "
             "from reviewlake.spark import lock_metastore; cfg = load_config(); "
             "cfg.paths.metastore.mkdir(parents=True, exist_ok=True); "
             f"lock_metastore(cfg); print('locked', flush=True); time.sleep({seconds})"],
            cwd=REPO, env={**os.environ, "REVIEWLAKE_HOME": str(tmp_path)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    holder = hold(120)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        line = one_error_line(submit(tmp_path, "sql", "SELECT 1"))
        assert f"(pid {holder.pid})" in line and "run one job at a time, or set spark.metastore_uri" in line
    finally:
        holder.kill()
        holder.wait()
    after = hold(0)  # the lock went with its killed process: the next one takes it
    out, err = after.communicate(timeout=60)
    assert after.returncode == 0 and out.strip() == "locked", err[-2000:]


def test_cluster_submission_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    """What goes wrong before a cluster job starts: each is one line, before any JVM starts."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_error_line(submit(home, "--master", f"spark://127.0.0.1:{port}", "sql", "SELECT 1"))
    assert line == (f"error: the Spark master spark://127.0.0.1:{port} is unreachable (Connection refused): "
                    "start it, or check --master / spark.master")
    line = one_error_line(submit(home, "--profile", "cluster", "--set", f"spark.env_archive={tmp_path / 'env.tar.gz'}",
                                 "score", "--model", "m@champion"))
    assert line.startswith(f"error: the environment archive {tmp_path / 'env.tar.gz'} is missing: build it with "
                           "./spark-submit.sh pack")
    line = one_error_line(submit(home, "--set", f"paths.jars={tmp_path}", "sql", "SELECT 1"))
    assert line.startswith(f"error: Delta jars not found in {tmp_path}: run ./scripts/bootstrap.sh")
    line = one_error_line(submit(home, "sql", "SELECT 1", JAVA_HOME=str(tmp_path / "nojdk")))
    assert line.startswith(f"error: Java not found (JAVA_HOME={tmp_path / 'nojdk'} has no bin/java)")
    java = tmp_path / "jdk11" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n')
    java.chmod(0o755)
    line = one_error_line(submit(home, "sql", "SELECT 1", JAVA_HOME=str(tmp_path / "jdk11")))
    assert line == f"error: {java} is Java 11; Spark 4.0 needs Java 17 or 21: install OpenJDK 17 and point JAVA_HOME at it"
