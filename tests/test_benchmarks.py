"""Benchmarks run in a bounded smoke form; REVIEWLAKE_FULL=1 runs them at their default size."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

FULL = os.environ.get("REVIEWLAKE_FULL") == "1"


def run_benchmark(script: str, smoke_rows: int, workdir: object, *smoke: str) -> str:
    """Run a benchmark script (smoke size and options unless REVIEWLAKE_FULL=1) and return what it printed."""
    args = [] if FULL else ["--rows", str(smoke_rows), *smoke]
    # As their docstrings run them: without the test script's PYTHONPATH (Spark's Python workers once could
    # not import the library then).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args, "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=3600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    return done.stdout


@pytest.mark.slow
def test_ingest_benchmark_prints_its_ratio(tmp_path: object) -> None:
    # At 2,000 rows Spark's fixed cost makes the ratio a few thousandths: printed with 4 decimals.
    # The smoke form leaves out the constraint-propagation rounds (two more ingests on a cold JVM path).
    out = run_benchmark("ingest.py", 2_000, tmp_path, "--rounds", "0")
    rows = 1_000_000 if FULL else 2_000
    assert f"{rows:,} rows in" in out
    ratio = re.search(r"ratio spark/pandas rows/s: (\d+\.\d+)", out)
    assert ratio and float(ratio.group(1)) > 0
    if FULL:
        ratio = re.search(r"ratio ingest seconds on/off constraint propagation: (\d+\.\d+)", out)
        assert ratio and float(ratio.group(1)) > 0, out
    else:
        assert "constraint propagation on/off: not measured (--rounds 0)" in out, out


@pytest.mark.slow
def test_preprocess_benchmark_prints_rates_and_step_shares(tmp_path: object) -> None:
    out = run_benchmark("preprocess.py", 2_000, tmp_path)
    assert re.search(r"preprocess: [\d,]+ bronze rows -> [\d,]+ silver rows in [\d.]+s \([\d,]+ rows/s per core", out)
    shares = [float(x) for x in re.findall(r"s\s+(\d+\.\d)%", out)]
    assert len(shares) == 5 and 99.0 <= sum(shares) <= 101.0


@pytest.mark.slow
def test_train_benchmark_prints_loader_and_backend_ratios(tmp_path: object) -> None:
    out = run_benchmark("train.py", 1_000, tmp_path, "--encoder", "tiny", "--steps", "3", "--tokenize-rounds", "1")
    for reader in ("pyarrow", "petastorm"):
        assert re.search(rf"loader {reader}\s+[\d,]+ rows,\s+[\d,]+ rows/s", out)
    for label in ("torch-distributor x1", "torch-distributor x2", "horovod x2"):
        assert re.search(rf"train {label}\s+[\d,]+ samples in\s+[\d.]+s of steps:\s+[\d.]+ samples/s", out)
    for ratio in (r"tokenize seconds in-worker/backend", r"pyarrow/petastorm loader rows/s",
                  r"torch-distributor 2 procs / 1 proc samples/s",
                  r"horovod / torch-distributor at 2 procs samples/s"):
        found = re.search(rf"ratio {ratio}: (\d+\.\d+)", out)
        assert found and float(found.group(1)) > 0, out


@pytest.mark.slow
def test_score_benchmark_prints_the_three_ways_and_ratios(tmp_path: object) -> None:
    out = run_benchmark("score.py", 300, tmp_path, "--encoder", "tiny", "--row-udf-rows", "40")
    for label in ("spark pandas UDF", "plain loop", "row-at-a-time UDF"):
        assert re.search(rf"score {label}\s+[\d,]+ reviews:\s+[\d.]+ reviews/s", out), out
    for ratio in ("spark/plain", "spark/row-udf"):
        found = re.search(rf"ratio {ratio} reviews/s: (\d+\.\d+)", out)
        assert found and float(found.group(1)) > 0, out


@pytest.mark.slow
def test_startup_benchmark_prints_the_class_archive_ratio(tmp_path: object) -> None:
    # The smoke form: one round of the query, no unmeasured warm-up run (its ratio is then skewed by the
    # first run creating the metastore; the script is what the smoke checks).
    args = [] if FULL else ["--rounds", "1", "--jobs", "sql", "--no-warmup"]
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "startup.py"), *args, "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"ratio sql start-to-end without/with archive: (\d+\.\d+)", done.stdout)
    assert found and float(found.group(1)) > 0, done.stdout
