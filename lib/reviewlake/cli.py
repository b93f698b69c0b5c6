"""What every job's command line shares: config options, logging, and one-line errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException

from reviewlake.config import ERROR_FILE, Config, ConfigError, load_config
from reviewlake.spark import MetastoreBusyError

log = logging.getLogger("reviewlake")

# Errors a user can fix: shown as one line, exit code 2, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError, ValueError, MetastoreBusyError)


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every job takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--profile", default=None,
                   help="config profile in conf/ applied over base.yaml (default: $REVIEWLAKE_PROFILE or local)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set spark.shuffle_partitions=16 (repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def config(args: argparse.Namespace) -> Config:
    """The configuration selected by the common options."""
    return load_config(args.profile, args.overrides)


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a job's ``main`` and exit with its code; a user error prints one line and exits 2."""
    verbose = "-v" in (argv or sys.argv) or "--verbose" in (argv or sys.argv)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        code = main(argv)
    except USER_ERRORS as exc:
        if verbose:
            log.exception("failed")
        report_error(str(exc))
        code = 2
    except (PySparkException, Py4JJavaError) as exc:
        if verbose:
            log.exception("failed")
        text = str(exc.java_exception) if isinstance(exc, Py4JJavaError) else str(exc)
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        report_error(f"Spark failed: {first[:400]} (the full log is in the logs folder, paths.logs; "
                     "-v shows the trace)")
        code = 1
    sys.exit(code)


def report_error(message: str) -> None:
    """Print ``error: <message>`` as one line on stderr (through spark-submit.sh when it runs us)."""
    line = "error: " + " ".join(message.split())
    target = os.environ.get(ERROR_FILE)
    if target:
        with open(target, "a") as fh:
            fh.write(line + "\n")
    else:
        print(line, file=sys.stderr)


def add_launch_options(p: argparse.ArgumentParser) -> None:
    """The options of how torch models train, shared by ``train`` and ``pipeline``."""
    from reviewlake.training.backends import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, help="how torch models are launched (default: train.backend)")
    p.add_argument("--num-proc", type=int, help="training processes (default: train.num_proc)")
    p.add_argument("--local-mode", action="store_true", help="run the processes on the driver, not on executors")
    p.add_argument("--use-gpu", action="store_true", help="one GPU per process (nccl)")
    p.add_argument("--epochs", type=int, help="phase-2 epochs (default: the model's train.*.epochs)")
    p.add_argument("--max-rows", type=int, help="at most this many training rows")
