"""The one SparkSession factory: Delta, Arrow, the persistent catalog and the executor environment.

Jobs, tests and notebooks all get their session from :func:`get_spark`; ``reviewlake.submit`` turns the
same settings (:func:`spark_conf`) into ``spark-submit`` arguments, so a job behaves the same whether
Python or ``spark-submit`` starts the JVM.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

from reviewlake.config import PROJECT_ROOT, Config

log = logging.getLogger(__name__)

LOG4J_CONF = PROJECT_ROOT / "conf" / "log4j2.properties"
SHIP_ENV = "REVIEWLAKE_SHIP_ENV"


def delta_jars(cfg: Config) -> list[Path]:
    """The jars in ``paths.jars`` that ``scripts/bootstrap.sh`` resolved from Maven Central.

    Raises
    ------
    FileNotFoundError
        When the folder is empty or missing: Spark would fail later with a class-not-found error.
    """
    jars = sorted(cfg.paths.jars.glob("*.jar"))
    if not any(j.name.startswith("delta-spark_") for j in jars):
        raise FileNotFoundError(
            f"Delta jars not found in {cfg.paths.jars}: run ./scripts/bootstrap.sh to resolve them "
            "from Maven Central once (or set paths.jars)"
        )
    return jars


def is_local(master: str) -> bool:
    """A master whose tasks run in the driver's JVM (``local``, ``local[N]``): no executors, nothing shipped."""
    return master == "local" or master.startswith("local[")


def java_binary() -> str | None:
    """The ``java`` spark-submit starts: ``JAVA_HOME/bin/java``, else the one on ``PATH`` (None: none)."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return java if java and Path(java).exists() else None


def _java_key() -> str | None:
    """Which JVM jobs start (:func:`java_binary`), as a short hash of its real path and modification
    time: a JDK update or another JDK gets an archive of its own."""
    java = java_binary()
    if java is None:
        return None
    real = Path(java).resolve()
    return hashlib.sha1(f"{real}:{real.stat().st_mtime_ns}".encode()).hexdigest()[:8]


def class_archive(cfg: Config) -> Path | None:
    """This environment's and JVM's class-data-sharing archive in ``spark.class_archives``
    (``<venv>-java<key>.jsa``; ``scripts/class_archive.py`` dumps it there), or None when none is
    configured or no Java is found."""
    java = _java_key()
    if cfg.spark.class_archives is None or java is None:
        return None
    return cfg.spark.class_archives.expanduser() / f"{Path(sys.prefix).resolve().name}-java{java}.jsa"


def driver_java_options(cfg: Config) -> str:
    """JVM options of the driver: quiet console logging with the full log in ``paths.logs``, Derby's log
    kept beside its database, and the environment's class archive when it is dumped (an archive is
    named after the environment and the JVM, so a stale one is not used; a path with a space or a
    colon, which Spark's option splitting or the JVM would misread, is left out)."""
    archive = class_archive(cfg)
    cds = (f" -XX:SharedArchiveFile={archive} -Xshare:auto"
           if archive is not None and archive.is_file() and not re.search(r"[\s:]", str(archive)) else "")
    return (f"-Dlog4j2.configurationFile=file:{LOG4J_CONF} -Dreviewlake.logs={cfg.paths.logs} "
            f"-Dderby.system.home={cfg.paths.metastore}{cds}")


class MetastoreBusyError(RuntimeError):
    """Another process holds the embedded (Derby) metastore, which allows one at a time."""


_HELD: dict[Path, int] = {}


def lock_metastore(cfg: Config) -> None:
    """Hold the embedded metastore for this process, or fail at once with the fix.

    Derby admits one process; a second job would otherwise fail deep in Hive with thousands of
    lines of ``XSDB6``. The lock is an OS file lock, so a killed job never leaves it behind.
    """
    if cfg.spark.metastore_uri:
        return
    lock = cfg.paths.metastore / "reviewlake.lock"
    if lock in _HELD:
        return
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise MetastoreBusyError(
            f"the embedded metastore {cfg.paths.metastore} is in use by another reviewlake job (pid {holder}): "
            "run one job at a time, or set spark.metastore_uri to a Hive metastore service"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _HELD[lock] = fd


def spark_conf(cfg: Config, ship_env: bool = True, check: bool = True) -> dict[str, str]:
    """Every Spark setting reviewlake relies on, as one flat mapping.

    ``ship_env`` false: a job that runs no Python on the executors (``reviewlake.submit.JVM_ONLY``) does
    not ship ``spark.env_archive``; a Python worker it starts by mistake fails at once instead of running
    another environment's Python. ``check`` false: an environment archive that is not built yet is no error
    (a scheduler's DAG file names it long before a task submits it).
    """
    conf = {
        "spark.app.name": cfg.spark.app_name,
        "spark.master": cfg.spark.master,
        "spark.driver.memory": cfg.spark.driver_memory,
        "spark.driver.extraJavaOptions": driver_java_options(cfg),
        "spark.jars": ",".join(str(j) for j in delta_jars(cfg)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(cfg.paths.warehouse),
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        # Partitions used to rebuild a table snapshot from its log (Delta default 50): few are enough
        # for the small logs of batch tables and save dozens of tiny tasks per read.
        "spark.databricks.delta.snapshotPartitions": "2",
        # Compiled generated code is cached by its source, 100 classes by default. One ingest alone
        # generates ~130 (validation, ids, two MERGEs, Delta's log reads), so in a session that lives
        # on (the tests, `serve`, a notebook, pipeline runs) the LRU cache evicted every class before
        # its next use: 129 compilations per ingest of a 6-row file, 2 with room for 2,000 (measured
        # with CodegenMetrics; 6.4 s -> 4.9 s per ingest).
        "spark.sql.codegen.cache.maxEntries": "2000",
    }
    if cfg.spark.metastore_uri:
        conf["spark.hadoop.hive.metastore.uris"] = cfg.spark.metastore_uri
    else:
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={cfg.paths.metastore / 'metastore_db'};create=true"
        )
    for key, value in cfg.spark.executor_env.items():
        conf[f"spark.executorEnv.{key}"] = value
    conf.update(archive_conf(cfg, ship_env, check))
    conf.update(gpu_conf(cfg))
    conf.update(cfg.spark.conf)
    if not is_local(cfg.spark.master):
        # Executors put the --py-files zip (reviewlake.submit) on their Python workers' sys.path, not on
        # PYTHONPATH: the processes a worker starts (TorchDistributor's torch.distributed.run, Horovod's
        # gloo_exec_fn) would not find reviewlake. The zip lies in the executor's folder, their working
        # directory. Kept in front of a PYTHONPATH of the user's.
        key = "spark.executorEnv.PYTHONPATH"
        conf[key] = ":".join(["reviewlake.zip", *([conf[key]] if conf.get(key) else [])])
    return conf


def archive_conf(cfg: Config, ship: bool = True, check: bool = True) -> dict[str, str]:
    """On a cluster master with ``spark.env_archive``: ship the packed environment (unless ``ship`` is
    false) and run the executors' Python from it; the driver keeps this interpreter.

    Raises
    ------
    FileNotFoundError
        When the archive is configured but not built.
    """
    archive = cfg.spark.env_archive
    if archive is None or cfg.spark.master.startswith("local"):
        return {}
    python = {"spark.pyspark.python": "./environment/bin/python", "spark.pyspark.driver.python": sys.executable}
    if not ship:
        return python
    if check and not archive.is_file():
        raise FileNotFoundError(f"the environment archive {archive} is missing: build it with ./spark-submit.sh pack "
                                "(or set spark.env_archive= when every node has the environment)")
    return {"spark.archives": f"{archive}#environment", **python}


def gpu_conf(cfg: Config) -> dict[str, str]:
    """Spark's GPU resource settings when ``spark.gpu.enabled``: GPUs per executor and per task and the
    discovery script (on a local master, the driver's GPUs, which TorchDistributor's local mode uses)."""
    gpu = cfg.spark.gpu
    if not gpu.enabled:
        return {}
    script = str(gpu.discovery_script if gpu.discovery_script.is_absolute() else PROJECT_ROOT / gpu.discovery_script)
    if cfg.spark.master.startswith("local["):
        return {"spark.driver.resource.gpu.amount": str(gpu.executor_amount),
                "spark.driver.resource.gpu.discoveryScript": script}
    return {"spark.executor.resource.gpu.amount": str(gpu.executor_amount),
            "spark.task.resource.gpu.amount": str(gpu.task_amount),
            "spark.executor.resource.gpu.discoveryScript": script}


def get_spark(cfg: Config, app_name: str | None = None, catalog: bool = True) -> "SparkSession":
    """Build (or return the running) SparkSession for ``cfg`` and make sure its database exists.

    Parameters
    ----------
    cfg
        The loaded configuration.
    app_name
        Shown in the Spark UI; ``spark.app_name`` from config by default.
    catalog
        False: no Hive catalog (tables are read by path, see :func:`table_path`), so a long-running
        process such as ``serve`` never holds the embedded metastore that the jobs need.
    """
    cfg.paths.logs.mkdir(parents=True, exist_ok=True)
    if catalog:
        cfg.paths.metastore.mkdir(parents=True, exist_ok=True)
        lock_metastore(cfg)
    # PySpark picks the workers' Python from the environment, not from spark.pyspark.python.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if cfg.spark.master.startswith("local"):
        # Without it Spark spends ~20 s resolving this host's name to a loopback address.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession  # here: spark_conf and table_path are used where only pyspark's client is

    builder = SparkSession.builder
    # reviewlake.submit says whether this job ships the environment archive (JVM_ONLY stages do not).
    for key, value in spark_conf(cfg, ship_env=os.environ.get(SHIP_ENV, "1") == "1").items():
        builder = builder.config(key, value)
    if app_name:
        builder = builder.appName(app_name)
    if not catalog:
        return builder.config("spark.sql.catalogImplementation", "in-memory").getOrCreate()
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{cfg.database}`")
    log.debug("spark %s on %s, database %s", spark.version, cfg.spark.master, cfg.database)
    return spark


@contextmanager
def session_conf(spark: "SparkSession", settings: dict[str, str]) -> Iterator[None]:
    """Set the SQL ``settings`` on ``spark`` for the block; each one's earlier value (or none) is back after."""
    before: dict[str, str | None] = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, earlier in before.items():
            if earlier is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, earlier)


def table_path(cfg: Config, role: str) -> Path:
    """Where the managed table of ``role`` keeps its files: ``<warehouse>/<database>.db/<table>``, as the
    Hive catalog places them, for a reader without the catalog (``spark.read.format("delta").load``)."""
    return cfg.paths.warehouse / f"{cfg.database.lower()}.db" / getattr(cfg.tables, role).lower()


def register_views(spark: "SparkSession", cfg: Config) -> list[str]:
    """Temporary views named as the tables of ``cfg`` (``reviews_silver``, ``topic_sentiment``, ...) over
    their Delta folders, for a session without the catalog (:func:`get_spark` with ``catalog=False``):
    notebooks query them with Spark SQL while jobs keep the embedded metastore. Returns the views made."""
    made = []
    for role, name in cfg.tables.model_dump().items():
        path = table_path(cfg, role)
        if (path / "_delta_log").is_dir():
            spark.read.format("delta").load(str(path)).createOrReplaceTempView(name)
            made.append(name)
    return made
