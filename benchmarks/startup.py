"""Job start-up benchmark: the same jobs with and without the driver JVM's class archive (spark.class_archives).

    .venv/bin/python benchmarks/startup.py               # 3 rounds of a query and of an ingest
    .venv/bin/python benchmarks/startup.py --rounds 5

Each round runs every job twice as a user does, ``./spark-submit.sh JOB`` in a fresh process, once with
the archive scripts/bootstrap.sh dumped and once with ``--set spark.class_archives=`` (none), in
alternating order. Prints the median wall seconds of each and their ratio, measured in this run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from reviewlake.config import load_config  # noqa: E402
from reviewlake.spark import class_archive  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "amazon_reviews_us_Books_v1_00.tsv"
JOBS = {"sql": ["sql", "SELECT count(*) FROM range(100000)"],
        "ingest": ["ingest", "--format", "amazon-tsv", "--input", str(FIXTURE)]}


def timed(home: Path, args: list[str], archive: bool) -> float:
    off = [] if archive else ["--set", "spark.class_archives="]
    t = time.perf_counter()
    done = subprocess.run([str(REPO / "spark-submit.sh"), *off, "--set", "spark.conf={spark.ui.enabled: 'false'}",
                           *args], env={**os.environ, "REVIEWLAKE_HOME": str(home)}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"startup: {' '.join(args)} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--jobs", default="ingest,sql", help=f"comma-separated, of {', '.join(JOBS)}")
    p.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the unmeasured first run of each job (the first measured one then creates the metastore)")
    args = p.parse_args()
    archive = class_archive(load_config("local"))
    if archive is None or not archive.is_file():
        raise SystemExit(f"startup: no class archive at {archive}: run ./scripts/bootstrap.sh")
    home = args.workdir or Path(tempfile.mkdtemp(prefix="reviewlake-bench-"))
    print(f"class archive {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
    for job in args.jobs.split(","):
        if not args.no_warmup:  # unmeasured: the first of a job creates its tables and warms the file cache
            timed(home, JOBS[job], True)
        seconds: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.rounds):
            for with_archive in ((True, False) if i % 2 == 0 else (False, True)):
                seconds[with_archive].append(timed(home, JOBS[job], with_archive))
        with_s, without_s = statistics.median(seconds[True]), statistics.median(seconds[False])
        print(f"{job:<7} with archive {with_s:5.1f}s  without {without_s:5.1f}s  (median of {args.rounds})")
        print(f"ratio {job} start-to-end without/with archive: {without_s / with_s:.2f}")


if __name__ == "__main__":
    main()
