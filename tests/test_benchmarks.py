"""Benchmarks run in a bounded smoke form; REVIEWLAKE_FULL=1 runs them at their default size."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

FULL = os.environ.get("REVIEWLAKE_FULL") == "1"


def run_benchmark(script: str, smoke_rows: int, workdir: object) -> str:
    """Run a benchmark script (smoke size unless REVIEWLAKE_FULL=1) and return what it printed."""
    args = [] if FULL else ["--rows", str(smoke_rows)]
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args, "--workdir", str(workdir)],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)
    return done.stdout


@pytest.mark.slow
def test_ingest_benchmark_prints_its_ratio(tmp_path: object) -> None:
    out = run_benchmark("ingest.py", 20_000, tmp_path)
    rows = 1_000_000 if FULL else 20_000
    assert f"{rows:,} rows in" in out
    ratio = re.search(r"ratio spark/pandas rows/s: (\d+\.\d+)", out)
    assert ratio and float(ratio.group(1)) > 0


@pytest.mark.slow
def test_preprocess_benchmark_prints_rates_and_step_shares(tmp_path: object) -> None:
    out = run_benchmark("preprocess.py", 5_000, tmp_path)
    assert re.search(r"preprocess: [\d,]+ bronze rows -> [\d,]+ silver rows in [\d.]+s \([\d,]+ rows/s per core", out)
    shares = [float(x) for x in re.findall(r"s\s+(\d+\.\d)%", out)]
    assert len(shares) == 5 and 99.0 <= sum(shares) <= 101.0
