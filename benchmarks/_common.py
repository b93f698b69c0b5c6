"""What the benchmarks share: their command line and a local config in their work folder."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

LIB = str(Path(__file__).resolve().parents[1] / "lib")
sys.path.insert(0, LIB)
# The Python workers Spark starts import the library too (the UDFs, the training processes): they inherit
# this process's environment, in which the environment shared by every clone has no reviewlake.
os.environ["PYTHONPATH"] = os.pathsep.join([LIB, *filter(None, [os.environ.get("PYTHONPATH")])])

from reviewlake.config import Config, load_config  # noqa: E402


@dataclass(frozen=True)
class Run:
    rows: int
    work: Path
    cores: int
    cfg: Config


def setup(doc: str | None, default_rows: int = 1_000_000) -> Run:
    """Parse ``--rows`` and ``--workdir``; config with tables and reports under the work folder."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=default_rows)
    p.add_argument("--workdir", type=Path, help="keep files here (default: a temp folder)")
    args = p.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="reviewlake-bench-"))
    cores = os.cpu_count() or 1
    cfg = load_config("local", [f"paths.warehouse={work / 'warehouse'}", f"paths.metastore={work / 'metastore'}",
                                f"paths.reports={work / 'reports'}", f"spark.master=local[{cores}]",
                                "spark.conf={spark.ui.showConsoleProgress: 'false'}"])
    return Run(args.rows, work, cores, cfg)
