"""The files an ingest reads: listed on the driver, checked before Spark opens them.

Spark's file sources skip files whose names start with ``.`` or ``_`` even when named explicitly, do
not descend into sub-folders, read a 0-byte file as no record and a non-bzip2 file named ``.bz2`` as
an empty one, and fail deep inside a task on a ``:`` in a file name. All of that would read a
non-empty input as nothing and report success, so the input is listed here first:

- a file named on the command line (or matched by a glob) is always read; a hidden one is read
  through a link with a visible name in a staging folder;
- folders are read recursively; hidden files inside them (``.crc``, ``_SUCCESS``, editor backups)
  are skipped, and every skipped file is reported with why;
- a compressed file whose first bytes are not its codec's magic number, and a name Hadoop cannot
  open, are errors that name the file before anything is read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession

# Suffixes Hadoop's codec factory decompresses by name, and the magic numbers we can check.
COMPRESSION_SUFFIXES = (".bz2", ".gz", ".deflate", ".zst", ".lz4", ".snappy")
_MAGIC = {".bz2": (b"BZh", "bzip2"), ".gz": (b"\x1f\x8b", "gzip"), ".zst": (b"\x28\xb5\x2f\xfd", "zstd")}


class InputError(ValueError):
    """An input file cannot be read as given; the message names the file and the fix."""


@dataclass(frozen=True)
class InputFile:
    """One file to read: ``read_as`` is what Spark opens, ``path`` what lineage records;
    ``explicit`` when it was named (or matched by a glob) rather than found in a folder."""

    path: str
    read_as: str
    size: int
    explicit: bool
    mtime_ns: int = -1  # modification time, as listed (ingest's unchanged-input fingerprint)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class InputFiles:
    """The files found at an input path, and those skipped with the reason."""

    files: list[InputFile]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def linked(self) -> dict[str, str]:
        """Staging link -> the file it stands for, for files read through a link."""
        return {f.read_as: f.path for f in self.files if f.read_as != f.path}


def is_hidden(name: str) -> bool:
    """Whether Spark and Hadoop skip a file of this name."""
    return name.startswith((".", "_"))


def _display(uri: str) -> str:
    """A Hadoop URI as a person writes the path: decoded, without ``file:`` for local files."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path)
    return f"{parsed.scheme}://{parsed.netloc}{unquote(parsed.path)}"


def _check_name(path: str) -> None:
    if ":" in path.rsplit("/", 1)[-1]:
        raise InputError(f"{path}: Hadoop cannot open a file whose name contains ':'; rename the file")


def _check_magic(path: str, head: bytes) -> None:
    for suffix, (magic, codec) in _MAGIC.items():
        if path.endswith(suffix) and not head.startswith(magic):
            raise InputError(
                f"{path}: named {suffix} but is not {codec} data (it starts with {head[:4]!r}); "
                f"compress it with {codec} or remove the {suffix} suffix"
            )


def _local_files(root: Path, explicit: bool, skipped: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    if explicit and root.is_file():
        stat = root.stat()
        return [(str(root), stat.st_size, stat.st_mtime_ns)]
    found = []
    for folder, dirs, names in os.walk(root):
        for d in sorted(dirs):
            if is_hidden(d):
                skipped.append((os.path.join(folder, d), "hidden folder (name starts with '.' or '_')"))
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        for name in sorted(names):
            full = os.path.join(folder, name)
            if is_hidden(name):
                skipped.append((full, "hidden file (name starts with '.' or '_'); name it explicitly to read it"))
            else:
                stat = os.stat(full)
                found.append((full, stat.st_size, stat.st_mtime_ns))
    return found


def list_input(spark: SparkSession, path: str, staging: Path) -> InputFiles:
    """List, check and (where needed) stage the files at ``path``: a file, a folder or a glob.

    Raises
    ------
    InputError
        When nothing exists at ``path``, a file name cannot be opened by Hadoop, or a compressed
        file is not what its suffix says.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        fs = hadoop_path.getFileSystem(conf)
        matched = fs.globStatus(hadoop_path)
    except Exception as exc:  # py4j wraps Hadoop's IllegalArgumentException (URISyntaxException)
        _check_name(path)
        raise InputError(f"{path}: not a path Hadoop can read ({str(exc).splitlines()[0]})") from exc
    if matched is None or len(matched) == 0:
        raise InputError(f"input path {path} does not exist")
    local = fs.getUri().getScheme() == "file"
    skipped: list[tuple[str, str]] = []
    listed: list[tuple[str, int, int, bool]] = []  # path, size, modification time (ns), named explicitly
    for status in matched:
        shown = _display(status.getPath().toUri().toString())
        if local:
            found = _local_files(Path(shown), not status.isDirectory(), skipped)
        elif not status.isDirectory():
            found = [(shown, int(status.getLen()), int(status.getModificationTime()) * 1_000_000)]
        else:
            found = []
            files = fs.listFiles(status.getPath(), True)
            while files.hasNext():
                f = files.next()
                shown_f = _display(f.getPath().toUri().toString())
                if any(is_hidden(part) for part in shown_f[len(shown):].split("/")):
                    skipped.append((shown_f, "hidden file (name starts with '.' or '_'); name it explicitly"))
                else:
                    found.append((shown_f, int(f.getLen()), int(f.getModificationTime()) * 1_000_000))
        listed += [(p, size, mtime, not status.isDirectory()) for p, size, mtime in found]

    out: list[InputFile] = []
    for file_path, size, mtime, explicit in listed:
        _check_name(file_path)
        if size > 0 and file_path.endswith(tuple(_MAGIC)):
            if local:
                with open(file_path, "rb") as fh:
                    head = fh.read(4)
            else:
                stream = fs.open(jvm.org.apache.hadoop.fs.Path(file_path))
                head = bytes(stream.read() & 0xFF for _ in range(4))
                stream.close()
            _check_magic(file_path, head)
        read_as = file_path
        if explicit and is_hidden(file_path.rsplit("/", 1)[-1]):
            if not local:
                raise InputError(f"{file_path}: Spark skips files whose names start with '.' or '_' "
                                 "and this one is not on a local disk; rename it")
            staging.mkdir(parents=True, exist_ok=True)
            link = staging / f"{len(out)}-{file_path.rsplit('/', 1)[-1].lstrip('._')}"
            link.unlink(missing_ok=True)
            link.symlink_to(file_path)
            read_as = str(link)
        # Spark globs every path it is given: a file named "[1].txt" must not read as a pattern.
        read_as = re.sub(r"([\[\]{}?*\\])", r"\\\1", read_as)
        out.append(InputFile(path=file_path, read_as=read_as, size=size, explicit=explicit, mtime_ns=mtime))
    return InputFiles(files=out, skipped=skipped)
