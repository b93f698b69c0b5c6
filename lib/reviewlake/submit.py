"""``./spark-submit.sh [--profile P] [--master URL] [--set K=V ...] STAGE [ARGS]``: run ``jobs/STAGE.py`` with
spark-submit (``--master URL`` is ``--set spark.master=URL``).

Imports only the config and the settings builder (no py4j, no Spark session), so a scheduler's DAG file
can build its tasks with :func:`operator_arguments` in an environment with pyspark's client only.

The master, Delta jars, catalog and every other setting come from the same config and
:func:`reviewlake.spark.spark_conf` that the session factory uses; the library is zipped and shipped
to executors with ``--py-files``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from reviewlake.config import ERROR_FILE, PROJECT_ROOT, Config, ConfigError, load_config
from reviewlake.spark import SHIP_ENV, java_binary, spark_conf

JOBS_DIR = PROJECT_ROOT / "jobs"
LIB_DIR = PROJECT_ROOT / "lib"
LIB_ZIP = PROJECT_ROOT / "build" / "reviewlake.zip"
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


# Stages that spark-submit does not start: pack runs no Spark; serve starts its own local session
# (one core, no catalog) and stays up.
NO_SPARK = {"pack", "serve"}
# Stages that run no Python on the executors (no UDF, no training process): on a cluster they do not
# ship the environment archive, whose unpacking costs each executor a minute or more.
JVM_ONLY = {"ingest", "preprocess", "aggregate", "sql"}
JAVA_MAJOR = (17, 21)  # what Spark 4.0 runs on


def check_java() -> None:
    """Fail in one line when the ``java`` spark-submit would start is missing or not 17 / 21."""
    java = java_binary()
    if java is None:
        home = os.environ.get("JAVA_HOME")
        where = f"JAVA_HOME={home} has no bin/java" if home else "no java on PATH"
        raise ConfigError(f"Java not found ({where}): install OpenJDK 17 and set JAVA_HOME or PATH")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{java} -version failed: {exc}") from exc
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not found:
        raise ConfigError(f"{java} -version printed no version: {' '.join(out.split())[:200]}")
    major = int(found[2]) if found[1] == "1" else int(found[1])  # "1.8.0" is Java 8
    if major not in JAVA_MAJOR:
        raise ConfigError(f"{java} is Java {major}; Spark 4.0 needs Java 17 or 21: install OpenJDK 17 and point "
                          "JAVA_HOME at it")


def check_master(master: str, seconds: float = 5.0) -> None:
    """Fail in one line when a standalone master (``spark://host:port``) does not accept connections."""
    if not master.startswith("spark://"):
        return  # local[*], yarn and k8s:// are reached (and checked) by spark-submit itself
    problem = "no address"
    for address in master.removeprefix("spark://").split(","):  # a list of masters under ZooKeeper
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"master URL {master}: give spark://HOST:PORT")
        try:
            with socket.create_connection((host, int(port)), timeout=seconds):
                return
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
    raise ConfigError(f"the Spark master {master} is unreachable ({problem}): start it, or check --master / "
                      "spark.master")


def split(argv: list[str]) -> tuple[list[str], str, list[str]]:
    """``argv`` as (common options, stage, job arguments); ``--master URL`` becomes ``--set spark.master=URL``."""
    common: list[str] = []
    rest = list(argv)
    while rest and rest[0] in ("--profile", "--set", "--master"):
        if len(rest) < 2:
            raise ConfigError(f"{rest[0]} needs a value")
        common += rest[:2] if rest[0] != "--master" else ["--set", f"spark.master={rest[1]}"]
        rest = rest[2:]
    if not rest or rest[0] in ("-h", "--help"):
        raise SystemExit(usage())
    return common, rest[0], rest[1:]


def _plan(common: list[str], stage: str, check: bool = True) -> tuple[Config, dict[str, str]]:
    """The config of a submission's common options and its Spark settings (Delta's jars and the environment
    archive are checked here)."""
    profile = common[common.index("--profile") + 1] if "--profile" in common else None
    overrides = [common[i + 1] for i, a in enumerate(common) if a == "--set"]
    cfg = load_config(profile, overrides)
    return cfg, spark_conf(cfg, ship_env=stage not in JVM_ONLY, check=check)


def _stage(stage: str) -> str:
    if stage not in stages():
        raise ConfigError(f"unknown stage '{stage}'; one of: {', '.join(stages())}")
    return str(JOBS_DIR / f"{stage}.py")


def command(argv: list[str]) -> list[str]:
    """The full spark-submit command line for ``argv`` (common options, stage, job arguments)."""
    common, stage, job_args = split(argv)
    job = _stage(stage)
    if "-h" in job_args or "--help" in job_args:
        return [sys.executable, job, *job_args]
    if stage in NO_SPARK:
        return [sys.executable, job, *common, *job_args]
    cfg, conf = _plan(common, stage)
    check_java()
    check_master(cfg.spark.master)
    cmd = [str(Path(sys.executable).parent / "spark-submit")]
    for key, value in conf.items():
        cmd += [_FLAGS[key], value] if key in _FLAGS else ["--conf", f"{key}={value}"]
    cmd += ["--py-files", str(build_lib_zip(LIB_ZIP))]
    return [*cmd, job, *common, *job_args]


def operator_arguments(argv: list[str]) -> dict[str, Any]:
    """Keyword arguments of Airflow's ``SparkSubmitOperator`` that submit what ``./spark-submit.sh argv``
    submits, from the same config: ``conf/schedule/reviewlake_dag.py`` builds its tasks with them.

    The master is the operator's connection (``conn_id``, e.g. ``spark_reviewlake`` with host
    ``spark://master``, port 7077), not ``spark.master``; the library zip is built by the DAG's first task
    (:func:`build_lib_zip`). Nothing is checked against the cluster here: a DAG file is parsed often and
    far from it.
    """
    common, stage, job_args = split(argv)
    job = _stage(stage)
    if stage in NO_SPARK:
        raise ConfigError(f"{stage} runs without Spark: schedule it as a plain command")
    _, conf = _plan(common, stage, check=False)
    conf = dict(conf)
    conf.pop("spark.master")
    return {
        "application": job, "application_args": [*common, *job_args], "name": conf.pop("spark.app.name"),
        "jars": conf.pop("spark.jars"), "driver_memory": conf.pop("spark.driver.memory"), "py_files": str(LIB_ZIP),
        "conf": conf, "spark_binary": "spark-submit",
        "env_vars": {"PYTHONPATH": str(LIB_DIR), "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                     "REVIEWLAKE_ROOT": str(PROJECT_ROOT), SHIP_ENV: "0" if stage in JVM_ONLY else "1"},
    }


def usage() -> str:
    return (
        "usage: ./spark-submit.sh [--profile P] [--master URL] [--set KEY=VALUE ...] STAGE [ARGS]\n"
        f"stages: {', '.join(stages())}\n"
        "./spark-submit.sh STAGE --help lists a stage's arguments."
    )


def main() -> None:
    try:
        cmd = command(sys.argv[1:])
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    env = dict(os.environ)
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["REVIEWLAKE_ROOT"] = str(PROJECT_ROOT)
    env[SHIP_ENV] = "0" if split(sys.argv[1:])[1] in JVM_ONLY else "1"
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
