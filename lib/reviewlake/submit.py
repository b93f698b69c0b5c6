"""``./spark-submit.sh [--profile P] [--set K=V ...] STAGE [ARGS]``: run ``jobs/STAGE.py`` with spark-submit.

The master, Delta jars, catalog and every other setting come from the same config and
:func:`reviewlake.spark.spark_conf` that the session factory uses; the library is zipped and shipped
to executors with ``--py-files``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from reviewlake.cli import ERROR_FILE
from reviewlake.config import PROJECT_ROOT, ConfigError, load_config
from reviewlake.spark import spark_conf

JOBS_DIR = PROJECT_ROOT / "jobs"
LIB_DIR = PROJECT_ROOT / "lib"
# spark-submit takes these as flags of its own; everything else goes as --conf.
_FLAGS = {"spark.master": "--master", "spark.app.name": "--name", "spark.driver.memory": "--driver-memory",
          "spark.jars": "--jars", "spark.driver.extraJavaOptions": "--driver-java-options"}


def stages() -> list[str]:
    """Names of the jobs in ``jobs/``."""
    return sorted(p.stem for p in JOBS_DIR.glob("*.py") if not p.stem.startswith("_"))


def build_lib_zip(out: Path) -> Path:
    """Zip ``lib/reviewlake`` for ``--py-files`` so executors import the same code as the driver.

    Written beside ``out`` and renamed over it: a job starting meanwhile never reads a torn zip.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((LIB_DIR / "reviewlake").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(LIB_DIR))
    os.replace(tmp, out)
    return out


def command(argv: list[str]) -> list[str]:
    """The full spark-submit command line for ``argv`` (common options, stage, job arguments)."""
    common: list[str] = []
    rest = list(argv)
    while rest and rest[0] in ("--profile", "--set"):
        if len(rest) < 2:
            raise ConfigError(f"{rest[0]} needs a value")
        common += rest[:2]
        rest = rest[2:]
    if not rest or rest[0] in ("-h", "--help"):
        raise SystemExit(usage())
    stage, job_args = rest[0], rest[1:]
    if stage not in stages():
        raise ConfigError(f"unknown stage '{stage}'; one of: {', '.join(stages())}")
    job = str(JOBS_DIR / f"{stage}.py")
    if "-h" in job_args or "--help" in job_args:
        return [sys.executable, job, *job_args]
    profile = common[common.index("--profile") + 1] if "--profile" in common else None
    overrides = [common[i + 1] for i, a in enumerate(common) if a == "--set"]
    cfg = load_config(profile, overrides)
    cmd = [str(Path(sys.executable).parent / "spark-submit")]
    for key, value in spark_conf(cfg).items():
        cmd += [_FLAGS[key], value] if key in _FLAGS else ["--conf", f"{key}={value}"]
    cmd += ["--py-files", str(build_lib_zip(PROJECT_ROOT / "build" / "reviewlake.zip"))]
    return [*cmd, job, *common, *job_args]


def usage() -> str:
    return (
        "usage: ./spark-submit.sh [--profile P] [--set KEY=VALUE ...] STAGE [ARGS]\n"
        f"stages: {', '.join(stages())}\n"
        "./spark-submit.sh STAGE --help lists a stage's arguments."
    )


def main() -> None:
    try:
        cmd = command(sys.argv[1:])
    except ConfigError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["REVIEWLAKE_ROOT"] = str(PROJECT_ROOT)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # spark-submit merges the driver's stderr into its stdout; the job writes its one-line error
    # to this file instead, and it is printed here on stderr, where scripts look for it.
    with tempfile.TemporaryDirectory(prefix="reviewlake-") as tmp:
        errors = Path(tmp) / "error"
        env[ERROR_FILE] = str(errors)
        child = subprocess.Popen(cmd, env=env)
        for sig in (signal.SIGTERM, signal.SIGHUP):  # a stopped wrapper stops the job, not orphans it
            signal.signal(sig, lambda number, _frame: child.send_signal(number))
        try:
            code = child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            code = child.wait()
        if errors.exists():
            sys.stderr.write(errors.read_text())
    sys.exit(128 - code if code < 0 else code)


if __name__ == "__main__":
    main()
