"""The environment as one archive for executors that do not have it: ``./spark-submit.sh pack``.

venv-pack writes the project's virtual environment (every pinned package, the horovod build and the
packaged encoders) into a ``.tar.gz`` with relative paths. ``spark.env_archive`` names it; on a cluster
master, ``reviewlake.spark.spark_conf`` ships it with ``spark.archives=<archive>#environment`` and points
the Python workers at ``./environment/bin/python``. The library itself is not in it: it goes as a zip with
``--py-files`` on every submission, so a code change needs no new archive.

venv-pack keeps the interpreter as a link to the base Python the venv was made from
(``python3.11`` under ``sys.base_prefix``): every node needs that Python at the same path (the same
image), or use ``conda-pack`` on a conda environment, which carries its interpreter.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from reviewlake.config import Config, ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackReport:
    archive: Path
    prefix: Path
    bytes: int
    seconds: float

    def summary(self) -> str:
        return (f"packed {self.prefix} into {self.archive} ({self.bytes / 2**20:,.0f} MiB) in {self.seconds:.0f} s; "
                f"cluster jobs ship it with spark.env_archive={self.archive}")


def pack_environment(cfg: Config, output: Path | None = None, prefix: Path | None = None) -> PackReport:
    """Pack the environment at ``prefix`` (this interpreter's venv) into ``output`` (``spark.env_archive``).

    Written beside the target and renamed over it, so a job starting meanwhile never ships a torn archive.

    Raises
    ------
    ConfigError
        When no output is given or configured, or the interpreter does not run in a virtual environment.
    """
    import venv_pack

    output = output or cfg.spark.env_archive
    if output is None:
        raise ConfigError("no archive to write: give --output or set spark.env_archive")
    if not output.name.endswith(".tar.gz"):
        raise ConfigError(f"{output}: the archive's name must end in .tar.gz (Spark unpacks it by its suffix)")
    prefix = prefix or Path(sys.prefix)
    if not (prefix / "pyvenv.cfg").exists():
        raise ConfigError(f"{prefix} is not a virtual environment (no pyvenv.cfg): run ./scripts/bootstrap.sh and "
                          "pack with .venv's Python")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tar.gz")
    clock = time.perf_counter()
    log.info("packing %s into %s (a few minutes for the full environment)", prefix, output)
    try:
        venv_pack.pack(prefix=str(prefix), output=str(tmp), format="tar.gz", force=True,
                       compress_level=cfg.spark.pack_compress_level,
                       filters=[("exclude", pattern) for pattern in cfg.spark.pack_exclude])
        os.chmod(tmp, 0o644)  # venv-pack writes 0600; a cluster's other users and services read it too
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return PackReport(output, prefix, output.stat().st_size, time.perf_counter() - clock)
