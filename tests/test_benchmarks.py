"""Benchmarks run in a bounded smoke form; REVIEWLAKE_FULL=1 runs them at their default size.

A smoke checks that a script runs and prints its ratios, not what they are. Each is a driver JVM busy on
one core most of the time, so the four that train nothing run two at a time (started together by the
``smokes`` fixture); the training benchmark, whose processes take both cores, runs alone. At full size
each runs alone, as their figures are measured.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import REPO

FULL = os.environ.get("REVIEWLAKE_FULL") == "1"


def benchmark_args(script: str, smoke_rows: int, *smoke: str) -> list[str]:
    """The script and its options: the smoke size and options unless REVIEWLAKE_FULL=1."""
    return [script, *([] if FULL else ["--rows", str(smoke_rows), *smoke])]


# The scripts that train nothing, with their smoke options.
SMOKES = {
    # At 2,000 rows Spark's fixed cost makes the ratio a few thousandths: printed with 4 decimals. The smoke
    # form leaves out the constraint-propagation rounds (two more ingests on a cold JVM path).
    "ingest": benchmark_args("ingest.py", 2_000, "--rounds", "0"),
    "preprocess": benchmark_args("preprocess.py", 2_000),
    "score": benchmark_args("score.py", 300, "--encoder", "tiny", "--row-udf-rows", "40"),
    # One round of the query, no unmeasured warm-up run (its ratio is then skewed by the first run creating
    # the metastore; the script is what the smoke checks).
    "startup": ["startup.py", *([] if FULL else ["--rounds", "1", "--jobs", "sql", "--no-warmup"])],
}


def run_benchmark(args: list[str], workdir: Path) -> str:
    """Run ``benchmarks/<script> [options]`` in its work folder and return what it printed."""
    # As their docstrings run them: without the test script's PYTHONPATH (Spark's Python workers once could
    # not import the library then).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / args[0]), *args[1:], "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=3600, env=env)
    assert done.returncode == 0, f"{args[0]}: {done.stderr[-3000:]}"
    print(done.stdout)
    return done.stdout


@pytest.fixture(scope="module")
def smokes() -> Iterator[dict[str, str]]:
    """What each script of SMOKES printed: two at a time in the smoke form, one at a time at full size."""
    with tempfile.TemporaryDirectory(prefix="reviewlake-bench-") as work:
        with ThreadPoolExecutor(max_workers=1 if FULL else 2) as pool:
            runs = {name: pool.submit(run_benchmark, args, Path(work) / name) for name, args in SMOKES.items()}
            yield {name: run.result() for name, run in runs.items()}


@pytest.mark.slow
def test_ingest_benchmark_prints_its_ratio(smokes: dict[str, str]) -> None:
    out = smokes["ingest"]
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
def test_preprocess_benchmark_prints_rates_and_step_shares(smokes: dict[str, str]) -> None:
    out = smokes["preprocess"]
    assert re.search(r"preprocess: [\d,]+ bronze rows -> [\d,]+ silver rows in [\d.]+s \([\d,]+ rows/s per core", out)
    shares = [float(x) for x in re.findall(r"s\s+(\d+\.\d)%", out)]
    assert len(shares) == 5 and 99.0 <= sum(shares) <= 101.0


@pytest.mark.slow
def test_score_benchmark_prints_the_three_ways_and_ratios(smokes: dict[str, str]) -> None:
    out = smokes["score"]
    for label in ("spark pandas UDF", "plain loop", "row-at-a-time UDF"):
        assert re.search(rf"score {label}\s+[\d,]+ reviews:\s+[\d.]+ reviews/s", out), out
    for ratio in ("spark/plain", "spark/row-udf"):
        found = re.search(rf"ratio {ratio} reviews/s: (\d+\.\d+)", out)
        assert found and float(found.group(1)) > 0, out


@pytest.mark.slow
def test_startup_benchmark_prints_the_class_archive_ratio(smokes: dict[str, str]) -> None:
    found = re.search(r"ratio sql start-to-end without/with archive: (\d+\.\d+)", smokes["startup"])
    assert found and float(found.group(1)) > 0, smokes["startup"]


@pytest.mark.slow
def test_train_benchmark_prints_loader_and_backend_ratios(tmp_path: Path) -> None:
    out = run_benchmark(benchmark_args("train.py", 1_000, "--encoder", "tiny", "--steps", "3", "--tokenize-rounds", "1"),
                        tmp_path)
    for reader in ("pyarrow", "petastorm"):
        assert re.search(rf"loader {reader}\s+[\d,]+ rows,\s+[\d,]+ rows/s", out)
    for label in ("torch-distributor x1", "torch-distributor x2", "horovod x2"):
        assert re.search(rf"train {label}\s+[\d,]+ samples in\s+[\d.]+s of steps:\s+[\d.]+ samples/s", out)
    for ratio in (r"tokenize seconds in-worker/backend", r"pyarrow/petastorm loader rows/s",
                  r"torch-distributor 2 procs / 1 proc samples/s",
                  r"horovod / torch-distributor at 2 procs samples/s"):
        found = re.search(rf"ratio {ratio}: (\d+\.\d+)", out)
        assert found and float(found.group(1)) > 0, out
