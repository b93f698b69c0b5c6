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


def number(pattern: str, out: str, group: int = 1) -> float:
    """The number a benchmark printed where ``pattern``'s group matches (thousands separators dropped)."""
    found = re.search(pattern, out)
    assert found, f"no {pattern!r} in:\n{out}"
    return float(found.group(group).replace(",", ""))


def assert_ratio(out: str, name: str, numerator: float, denominator: float, rel: float) -> None:
    """The printed ``ratio NAME: X`` is the ratio of the figures printed beside it (rounded as printed)."""
    assert number(rf"ratio {re.escape(name)}: (\d+\.\d+)", out) == pytest.approx(numerator / denominator, rel=rel,
                                                                                  abs=0.006), out


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
    generated = number(r"generated ([\d,]+) lines", out)
    assert generated >= (1_000_000 if FULL else 2_000)
    pandas_rows = number(r"pandas, 1 process:\s+([\d,]+) rows", out)
    spark_rows = number(r"spark ingest, \d+ cores:\s+([\d,]+) rows", out)
    assert pandas_rows == spark_rows == generated, out  # both read every line the generator wrote
    assert_ratio(out, "spark/pandas rows/s", number(r"spark ingest, \d+ cores:\s+[\d,]+ rows in [\d.]+s = ([\d,]+)", out),
                 number(r"pandas, 1 process:\s+[\d,]+ rows in [\d.]+s = ([\d,]+)", out), rel=0.01)
    if FULL:
        on = number(r"constraint propagation on ([\d.]+)", out)
        off = number(r"off ([\d.]+)", out)
        assert_ratio(out, "ingest seconds on/off constraint propagation", on, off, rel=0.05)
    else:
        assert "constraint propagation on/off: not measured (--rounds 0)" in out, out


@pytest.mark.slow
def test_preprocess_benchmark_prints_rates_and_step_shares(smokes: dict[str, str]) -> None:
    out = smokes["preprocess"]
    total = number(r"silver rows in ([\d.]+)s", out)
    steps = re.findall(r"^  .+?\s+(\d+\.\d)s\s+(\d+\.\d)%$", out, re.M)
    assert len(steps) == 5, out
    for seconds, share in steps:  # each share is its step's seconds over the printed total
        assert float(share) == pytest.approx(100 * float(seconds) / total, abs=0.6 + 5.0 / total), out


@pytest.mark.slow
def test_score_benchmark_prints_the_three_ways_and_ratios(smokes: dict[str, str]) -> None:
    out = smokes["score"]
    reviews = number(r"([\d,]+) generated reviews", out)
    rate = {label: number(rf"score {label}\s+[\d,]+ reviews:\s+([\d.]+) reviews/s", out)
            for label in ("spark pandas UDF", "plain loop", "row-at-a-time UDF")}
    for label in ("spark pandas UDF", "plain loop"):  # both score every generated review
        assert number(rf"score {label}\s+([\d,]+) reviews", out) == reviews, out
    assert_ratio(out, "spark/plain reviews/s", rate["spark pandas UDF"], rate["plain loop"], rel=0.02)
    assert_ratio(out, "spark/row-udf reviews/s", rate["spark pandas UDF"], rate["row-at-a-time UDF"], rel=0.02)


@pytest.mark.slow
def test_startup_benchmark_prints_the_class_archive_ratio(smokes: dict[str, str]) -> None:
    out = smokes["startup"]
    assert_ratio(out, "sql start-to-end without/with archive", number(r"sql\s+with archive\s+[\d.]+s\s+without\s+([\d.]+)s", out),
                 number(r"sql\s+with archive\s+([\d.]+)s", out), rel=0.05)


@pytest.mark.slow
def test_train_benchmark_prints_loader_and_backend_ratios(tmp_path: Path) -> None:
    out = run_benchmark(benchmark_args("train.py", 1_000, "--encoder", "tiny", "--steps", "3", "--tokenize-rounds", "1"),
                        tmp_path)
    train_rows = number(r"snapshot: ([\d,]+) training rows", out)
    loader = {reader: number(rf"loader {reader}\s+[\d,]+ rows,\s+([\d,]+) rows/s", out)
              for reader in ("pyarrow", "petastorm")}
    for reader in loader:  # each reader reads the whole training snapshot
        assert number(rf"loader {reader}\s+([\d,]+) rows", out) == train_rows, out
    samples = {label: number(rf"train {label}\s+[\d,]+ samples in\s+[\d.]+s of steps:\s+([\d.]+) samples/s", out)
               for label in ("torch-distributor x1", "torch-distributor x2", "horovod x2")}
    assert_ratio(out, "tokenize seconds in-worker/backend", number(r"loaded in each worker ([\d.]+)s", out),
                 number(r"backend JSON from the driver ([\d.]+)s", out), rel=0.02)
    assert_ratio(out, "pyarrow/petastorm loader rows/s", loader["pyarrow"], loader["petastorm"], rel=0.01)
    assert_ratio(out, "torch-distributor 2 procs / 1 proc samples/s", samples["torch-distributor x2"],
                 samples["torch-distributor x1"], rel=0.02)
    assert_ratio(out, "horovod / torch-distributor at 2 procs samples/s", samples["horovod x2"],
                 samples["torch-distributor x2"], rel=0.02)
