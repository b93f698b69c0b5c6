"""Benchmarks run in a bounded smoke form; REVIEWLAKE_FULL=1 runs them at their default size."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

FULL = os.environ.get("REVIEWLAKE_FULL") == "1"


@pytest.mark.slow
def test_ingest_benchmark_prints_its_ratio(tmp_path: object) -> None:
    args = [] if FULL else ["--rows", "20000"]
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ingest.py"), *args,
                           "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = 1_000_000 if FULL else 20_000
    assert f"{rows:,} rows in" in done.stdout
    ratio = re.search(r"ratio spark/pandas rows/s: (\d+\.\d+)", done.stdout)
    assert ratio and float(ratio.group(1)) > 0
    print(done.stdout)


@pytest.mark.slow
def test_preprocess_benchmark_prints_rates_and_step_shares(tmp_path: object) -> None:
    args = [] if FULL else ["--rows", "5000"]
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "preprocess.py"), *args,
                           "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"preprocess: [\d,]+ bronze rows -> [\d,]+ silver rows in [\d.]+s \([\d,]+ rows/s per core",
                     done.stdout)
    shares = [float(x) for x in re.findall(r"s\s+(\d+\.\d)%", done.stdout)]
    assert len(shares) == 5 and 99.0 <= sum(shares) <= 101.0
    print(done.stdout)
