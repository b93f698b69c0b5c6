"""Bronze ingest: read any supported format, validate, and MERGE into ``reviews_bronze``.

Rows that fail validation go to ``reviews_quarantine`` with their raw record, file and reason; each run
records ``rows_read = rows_accepted + rows_quarantined`` in ``ingest_runs``. Both tables are written
with insert-only MERGEs keyed on deterministic ids, so re-running an ingest adds nothing, and a run
killed between the two MERGEs is completed by the next one.
"""

from __future__ import annotations

import logging
import hashlib
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from urllib.parse import unquote

from delta.tables import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from reviewlake import tables
from reviewlake.config import Config, TimeFormat
from reviewlake.sources import ReadOptions, registry
from reviewlake.sources.files import COMPRESSION_SUFFIXES, InputError, InputFiles, list_input
from reviewlake.sources.tabular import mapping
from reviewlake.spark import session_conf
from reviewlake.text import has_text_column

log = logging.getLogger(__name__)

REPLACEMENT_CHAR = "\ufffd"
_SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TRUE = ["y", "yes", "true", "1"]
_FALSE = ["n", "no", "false", "0"]


class IngestError(ValueError):
    """The input or the request cannot be ingested; nothing was written."""


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run read and wrote."""

    run_id: str
    source: str
    format: str
    input: str
    started_at: datetime
    finished_at: datetime
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    bronze_rows_inserted: int
    bronze_rows_already_present: int
    bronze_rows_repeated: int
    quarantine_rows_inserted: int
    quarantine_rows_already_present: int
    quarantine_rows_repeated: int
    bronze_version: int
    files_read: int
    files_skipped: int
    # sha256 of the format, source, category and each file's path, size and modification time.
    input_fingerprint: str | None = None
    # True when skip_unchanged found a finished run over the same fingerprint: nothing was read.
    unchanged: bool = False

    def summary(self) -> str:
        """One line for a person: every row read is accounted for."""
        if self.unchanged:
            return (f"ingest {self.source} ({self.format}) from {self.input}: unchanged since an earlier run "
                    f"(same files, sizes and times), skipped; bronze stays at v{self.bronze_version}")
        return (
            f"ingest {self.source} ({self.format}) from {self.input}: {self.files_read} file(s) read, "
            f"{self.files_skipped} skipped; {self.rows_read:,} rows = accepted {self.rows_accepted:,} + "
            f"quarantined {self.rows_quarantined:,}; accepted = {self.bronze_rows_inserted:,} inserted + "
            f"{self.bronze_rows_already_present:,} already in bronze + {self.bronze_rows_repeated:,} "
            f"repeating an id of this input; quarantined = {self.quarantine_rows_inserted:,} inserted + "
            f"{self.quarantine_rows_already_present:,} already there + "
            f"{self.quarantine_rows_repeated:,} repeated"
        )


def _blank_to_null(c: Column) -> Column:
    return F.when(F.trim(c) != "", c)


# Unix times a timestamp can hold (years 0001 to 9999): outside them Spark's conversion overflows
# and fails the whole run, so such a value is a wrong_type row instead.
_UNIX_SECONDS = (-62135596800, 253402300799)


def _parse_time(raw: Column, time_format: TimeFormat | None) -> Column:
    if time_format is None:
        return F.lit(None).cast("timestamp")
    if time_format in ("unix_seconds", "unix_millis"):
        scale = 1 if time_format == "unix_seconds" else 1000
        value = raw.try_cast("long")
        convert = F.timestamp_seconds if scale == 1 else F.timestamp_millis
        return F.when(value.between(_UNIX_SECONDS[0] * scale, _UNIX_SECONDS[1] * scale), convert(value))
    if time_format == "date":
        return F.try_to_timestamp(raw, F.lit("yyyy-MM-dd"))
    return raw.try_cast("timestamp")


def validate(staged: DataFrame, time_format: TimeFormat | None, max_text_chars: int) -> DataFrame:
    """Type the staged string fields and give each row a quarantine ``reason`` (null when valid).

    A row gets the first reason that applies, in this order: ``unparseable``, ``wrong_type`` of a
    JSON text field, ``missing_text`` (null, or only white space, control or format characters such
    as tabs, newlines, NUL and zero-width spaces), ``invalid_utf8``, ``wrong_type``,
    ``rating_out_of_range``, ``oversize_text``; ``detail`` says which field and value.
    """
    s = {c: _blank_to_null(F.col(c)) for c in ("rating", "review_time", "verified", "helpful_votes")}
    rating = s["rating"].try_cast("double")
    review_time = _parse_time(s["review_time"], time_format)
    verified_lc = F.lower(F.trim(s["verified"]))
    verified = F.when(verified_lc.isin(_TRUE), True).when(verified_lc.isin(_FALSE), False)
    helpful = s["helpful_votes"].try_cast("int")
    text_len = F.length("text")

    def bad(raw: Column, typed: Column, name: str, expected: str) -> tuple[Column, Column]:
        return raw.isNotNull() & typed.isNull(), F.format_string(f"{name}='%s' is not {expected}", raw)

    checks: list[tuple[str, Column, Column]] = [
        ("unparseable", F.col("parse_error").isNotNull(), F.col("parse_error")),
        ("wrong_type", F.col("type_error").isNotNull(), F.col("type_error")),
        ("missing_text", ~has_text_column(F.col("text")),
         F.lit("no review text")),
        (
            "invalid_utf8",
            # Spark keeps a file's bytes as read: an invalid sequence is either still there (raw
            # record) or, once a string function decoded it, a U+FFFD replacement character.
            ~F.coalesce(F.is_valid_utf8("raw_record"), F.lit(True))
            | F.col("text").contains(REPLACEMENT_CHAR)
            | F.coalesce(F.col("title").contains(REPLACEMENT_CHAR), F.lit(False)),
            F.lit("text is not valid UTF-8"),
        ),
        ("wrong_type", *bad(s["rating"], rating, "rating", "a number")),
        ("wrong_type", *bad(s["review_time"], review_time, "review_time",
                            f"a {time_format} time in the years 1 to 9999")),
        ("wrong_type", *bad(s["verified"], verified, "verified", "a yes/no value")),
        ("wrong_type", *bad(s["helpful_votes"], F.when(helpful >= 0, helpful), "helpful_votes",
                            "a count")),
        (
            "rating_out_of_range",
            rating.isNotNull() & ((rating < 1) | (rating > 5) | (rating != F.floor(rating))),
            F.format_string("rating=%s is not a whole number in 1..5", s["rating"]),
        ),
        (
            "oversize_text",
            text_len > max_text_chars,
            F.format_string(f"text has %d characters, more than max_text_chars={max_text_chars}",
                            text_len),
        ),
    ]
    reason = F.lit(None).cast("string")
    detail = F.lit(None).cast("string")
    for code, failed, why in reversed(checks):
        reason = F.when(failed, F.lit(code)).otherwise(reason)
        detail = F.when(failed, why).otherwise(detail)
    return staged.select(
        "*",
        rating.try_cast("int").alias("rating_int"),  # 1e10 or NaN are quarantined, not an overflow
        review_time.alias("review_time_ts"),
        verified.alias("verified_bool"),
        helpful.alias("helpful_int"),
        reason.alias("reason"),
        detail.alias("detail"),
    )


def _sha(*parts: Column) -> Column:
    return F.substring(F.sha2(F.concat_ws("\u0001", *parts), 256), 1, 32)


def with_ids(validated: DataFrame, source: str) -> DataFrame:
    """Add ``review_id`` and ``quarantine_id``: unique per distinct record, stable across re-reads.

    A record with a complete natural key (every part present) is identified by the source and that
    key. A record without one (fastText lines, JSON rows missing a key field, quarantined rows) is
    identified by its content: the raw record, its key parts (null-safe, so missing parts never
    merge records) and its occurrence, the n-th time that raw record appears in its file. So the
    same file read again, plain or compressed, from any folder, gives the same ids; different
    files of the same name give different ones; a line repeated in a file is one record per copy.

    Occurrences need one aggregation of a 64-bit hash per record; only the records whose raw text
    repeats within their file (usually few) are numbered with a window.
    """
    parts = F.col("key_parts")
    complete = (F.size(parts) > 0) & F.forall(parts, lambda p: p.isNotNull() & (F.trim(p) != ""))
    by_content = ~complete | F.col("reason").isNotNull()
    raw = F.coalesce(F.col("raw_record"), F.lit(""))
    frame = validated.withColumn("_dup_key", F.when(by_content, F.xxhash64("source_file", raw)))
    repeated = (frame.where(F.col("_dup_key").isNotNull()).groupBy("_dup_key").count()
                .where("count > 1").select("_dup_key"))
    if repeated.isEmpty():
        frame = frame.withColumn("_occurrence", F.lit(1))
    else:
        numbered = (
            frame.join(F.broadcast(repeated), "_dup_key")
            .select("source_file", "source_line", F.row_number().over(
                Window.partitionBy("_dup_key").orderBy("source_line")).alias("_occurrence"))
        )
        frame = frame.join(F.broadcast(numbered), ["source_file", "source_line"], "left").withColumn(
            "_occurrence", F.coalesce("_occurrence", F.lit(1)))
    content = [F.lit(source), F.to_json(parts), F.col("_occurrence").cast("string"), raw]
    return frame.select(
        *validated.columns,
        F.when(F.col("reason").isNull(), F.when(complete, _sha(F.lit(source), F.lit("key"), F.to_json(parts)))
               .otherwise(_sha(F.lit("record"), *content))).alias("review_id"),
        F.when(F.col("reason").isNotNull(), _sha(F.lit("quarantine"), *content)).alias("quarantine_id"),
    )


def to_bronze(validated: DataFrame, source: str, run_id: str, at: datetime) -> DataFrame:
    """The accepted rows of a validated frame with ids, in the bronze schema."""
    return validated.where(F.col("reason").isNull()).select(
        "review_id",
        F.lit(source).alias("source"),
        "product_id",
        "product_title",
        "category",
        F.col("rating_int").alias("rating"),
        "label",
        _blank_to_null(F.col("title")).alias("title"),
        "text",
        F.col("review_time_ts").alias("review_time"),
        F.col("verified_bool").alias("verified"),
        F.col("helpful_int").alias("helpful_votes"),
        "source_file",
        "source_line",
        F.lit(run_id).alias("ingest_run_id"),
        F.lit(at).alias("ingested_at"),
    )


def to_quarantine(validated: DataFrame, source: str, fmt: str, run_id: str, at: datetime) -> DataFrame:
    """The rejected rows of a validated frame with ids, in the quarantine schema."""
    return validated.where(F.col("reason").isNotNull()).select(
        "quarantine_id",
        F.lit(source).alias("source"),
        F.lit(fmt).alias("format"),
        "source_file",
        "source_line",
        "raw_record",
        "reason",
        "detail",
        F.lit(run_id).alias("ingest_run_id"),
        F.lit(at).alias("quarantined_at"),
    )


def _select_members(listing: InputFiles, member: str | None, why: str) -> InputFiles:
    """Drop files found inside folders that do not match the format's ``member`` pattern."""
    if member is None:
        return listing
    pattern = re.compile(member)
    keep = [f for f in listing.files if f.explicit or pattern.search(f.path)]
    skipped = [(f.path, why) for f in listing.files if not (f.explicit or pattern.search(f.path))]
    return InputFiles(files=keep, skipped=listing.skipped + skipped)


def read_failure(exc: BaseException, listing: InputFiles) -> IngestError | None:
    """A one-line :class:`IngestError` for a Spark job that failed reading an input file, or None.

    Spark reports such failures as ``FAILED_READ_FILE`` with the file's URL-encoded path, and the
    decompressor's exception (``unexpected end of stream``, ``Not in GZIP format``, a CRC error)
    as the cause.
    """
    text = str(exc)
    if "FAILED_READ_FILE" not in text:
        return None
    named = re.search(r"Encountered error while reading file (\S+?)\.?\s", text)
    failed = re.sub(r"^file:(//)?(?=/)", "", unquote(named.group(1).replace("+", "%2B"))) if named else ""
    culprit = next((f for f in listing.files if failed in (f.path, f.read_as)), None)
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    cause = causes[-1].removeprefix("Caused by:").strip() if causes else text.splitlines()[0]
    compressed = culprit is not None and culprit.path.endswith(COMPRESSION_SUFFIXES)
    what = "corrupt or truncated compressed data" if compressed else "cannot be read"
    where = culprit.path if culprit else ", ".join(f.path for f in listing.files[:3])
    return IngestError(f"{where}: {what} ({cause[:200]}); nothing was written")


def input_fingerprint(listing: InputFiles, fmt: str, source: str, category: str | None) -> str:
    """What identifies an input for ``skip_unchanged``: the request and every file's path, size and
    modification time, as the listing found them."""
    digest = hashlib.sha256(f"{fmt}\0{source}\0{category or ''}".encode())
    for f in sorted(listing.files, key=lambda f: f.path):
        digest.update(f"\0{f.path}\0{f.size}\0{f.mtime_ns}".encode())
    return digest.hexdigest()


def _finished_run(spark: SparkSession, cfg: Config, fingerprint: str) -> str | None:
    """The id of a recorded ingest run over ``fingerprint``, if any. A run is recorded after both MERGEs
    committed, so a run killed half-way is never taken for a finished one."""
    name = cfg.table("ingest_runs")
    if not spark.catalog.tableExists(name):
        return None
    runs = spark.table(name)
    if "input_fingerprint" not in runs.columns:
        return None
    found = runs.where(F.col("input_fingerprint") == fingerprint).select("run_id").limit(1).collect()
    return str(found[0]["run_id"]) if found else None


def ingest(
    spark: SparkSession,
    cfg: Config,
    fmt: str,
    path: str,
    source: str | None = None,
    category: str | None = None,
    skip_unchanged: bool = False,
) -> IngestReport:
    """Ingest the files at ``path`` in format ``fmt`` into the bronze and quarantine tables.

    Parameters
    ----------
    fmt
        One of :func:`reviewlake.sources.registry`.
    path
        A file, folder (read recursively) or glob on any filesystem Spark reads.
    source
        Name of the corpus in ``reviews_bronze.source``; the format's name by default. For ``csv`` and
        ``parquet`` it also selects the column mapping in ``ingest.tabular``.
    category
        Category of every review, when the files do not say it.
    skip_unchanged
        Read nothing when ``ingest_runs`` records a run over the same files (path, size and modification
        time) with the same format, source and category: ``pipeline`` re-runs cheaply. A plain re-run
        reads again and inserts nothing.

    Raises
    ------
    IngestError
        On an unknown format, a bad source name, a missing, unreadable, corrupt or mis-named input,
        or input bytes that held no record, before any table is touched.
    """
    readers = registry()
    if fmt not in readers:
        raise IngestError(f"unknown format '{fmt}'; one of: {', '.join(readers)}")
    reader = readers[fmt]
    source = source or fmt
    if not _SOURCE_NAME.fullmatch(source):
        raise IngestError(f"source name {source!r} may hold only letters, digits, '_', '.', '-'")
    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    try:
        listing = list_input(spark, path, cfg.paths.data / "_staging" / run_id)
    except InputError as exc:
        raise IngestError(str(exc)) from exc
    listing = _select_members(listing, reader.member, reader.member_doc)
    for skipped, why in listing.skipped[:20]:
        log.warning("skipped %s: %s", skipped, why)
    if len(listing.skipped) > 20:
        log.warning("skipped %d more files (see the run's files_skipped)", len(listing.skipped) - 20)
    if not listing.files:
        raise IngestError(f"{path}: no file to read ({len(listing.skipped)} skipped: "
                          f"{'; '.join(f'{p}: {w}' for p, w in listing.skipped[:3])})")
    fingerprint = input_fingerprint(listing, fmt, source, category)
    if skip_unchanged:
        earlier = _finished_run(spark, cfg, fingerprint)
        if earlier is not None:
            now = datetime.now(timezone.utc)
            bronze_version = tables.table_version(DeltaTable.forName(spark, cfg.table("bronze")))
            log.info("%s: unchanged since ingest run %s; skipped", path, earlier)
            return _record(spark, cfg, IngestReport(run_id=run_id, source=source, format=fmt, input=path, started_at=now,
                                finished_at=now, rows_read=0, rows_accepted=0, rows_quarantined=0,
                                bronze_rows_inserted=0, bronze_rows_already_present=0, bronze_rows_repeated=0,
                                quarantine_rows_inserted=0, quarantine_rows_already_present=0,
                                quarantine_rows_repeated=0, bronze_version=bronze_version, files_read=0,
                                files_skipped=len(listing.skipped), input_fingerprint=fingerprint, unchanged=True))
    options = ReadOptions(source=source, category=category, cfg=cfg, files=listing)
    time_format = reader.time_format or (mapping(options).time_format if fmt in ("csv", "parquet") else None)

    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    sc = spark.sparkContext
    sc.setJobDescription(f"ingest {source}: read and validate {path}")
    validated: DataFrame | None = None
    # ingest.constraint_propagation (off by default: the optimizer spent seconds per query on the
    # validation's CASE expressions; benchmarks/ingest.py)
    propagation = str(cfg.ingest.constraint_propagation).lower()
    with session_conf(spark, {"spark.sql.constraintPropagation.enabled": propagation}):
        try:
            try:
                # Read once: the counts and both MERGEs use the cached validated rows (measured 48s vs
                # 64s per 1M lines against recomputing validation from the readers' cached lines).
                validated = with_ids(validate(reader.read(spark, path, options), time_format,
                                              cfg.ingest.max_text_chars), source)
                validated = validated.persist(StorageLevel.MEMORY_AND_DISK)
                counts = {r["ok"]: r for r in validated.groupBy(F.col("reason").isNull().alias("ok")).agg(
                    F.count("*").alias("n"), F.count_distinct("review_id").alias("ids"),
                    F.count_distinct("quarantine_id").alias("qids")).collect()}
            except (Py4JJavaError, PySparkException) as exc:
                failure = read_failure(exc, listing)
                if failure is None:
                    raise
                raise failure from exc
            accepted = counts[True]["n"] if True in counts else 0
            quarantined = counts[False]["n"] if False in counts else 0
            distinct_ids = counts[True]["ids"] if True in counts else 0
            distinct_qids = counts[False]["qids"] if False in counts else 0
            if accepted + quarantined == 0 and listing.total_bytes > 0:
                raise IngestError(f"{path}: read no {fmt} record from {len(listing.files)} file(s) of "
                                  f"{listing.total_bytes:,} bytes; is it the right --format?")
            for frame in options.persisted:  # validated is cached now; the readers' caches can go
                frame.unpersist()
            log.info("%s: %d rows read, %d accepted, %d quarantined (%.1fs)", path, accepted + quarantined,
                     accepted, quarantined, time.perf_counter() - clock)

            bronze = tables.ensure_table(spark, cfg.table("bronze"), tables.BRONZE_SCHEMA, ["source"], "bronze")
            quarantine = tables.ensure_table(spark, cfg.table("quarantine"), tables.QUARANTINE_SCHEMA,
                                             ["source"], "quarantine")
            inserted = quarantined_new = 0  # a MERGE of no rows would insert none: it is not run
            if accepted:
                sc.setJobDescription(f"ingest {source}: merge into {cfg.table('bronze')}")
                inserted = tables.insert_new(bronze, to_bronze(validated, source, run_id, started),
                                             ["review_id"], prune={"source": source})
                log.info("%s: %d new rows (%.1fs)", cfg.table("bronze"), inserted, time.perf_counter() - clock)
            if quarantined:
                sc.setJobDescription(f"ingest {source}: merge into {cfg.table('quarantine')}")
                quarantined_new = tables.insert_new(
                    quarantine, to_quarantine(validated, source, fmt, run_id, started), ["quarantine_id"],
                    prune={"source": source},
                )
                log.info("%s: %d new rows (%.1fs)", cfg.table("quarantine"), quarantined_new,
                         time.perf_counter() - clock)
        finally:
            shutil.rmtree(cfg.paths.data / "_staging" / run_id, ignore_errors=True)
            if validated is not None:
                validated.unpersist()
            for frame in options.persisted:
                frame.unpersist()
            sc.setJobDescription(None)  # type: ignore[arg-type]

    report = IngestReport(
        run_id=run_id, source=source, format=fmt, input=path, started_at=started,
        finished_at=datetime.now(timezone.utc), rows_read=accepted + quarantined,
        rows_accepted=accepted, rows_quarantined=quarantined, bronze_rows_inserted=inserted,
        bronze_rows_already_present=distinct_ids - inserted, bronze_rows_repeated=accepted - distinct_ids,
        quarantine_rows_inserted=quarantined_new,
        quarantine_rows_already_present=distinct_qids - quarantined_new,
        quarantine_rows_repeated=quarantined - distinct_qids,
        bronze_version=tables.table_version(bronze), files_read=len(listing.files),
        files_skipped=len(listing.skipped), input_fingerprint=fingerprint,
    )
    if inserted < accepted:
        log.warning("%s: %d accepted rows not inserted: %d had an id already in %s, %d repeated an id "
                    "within this input", path, accepted - inserted, report.bronze_rows_already_present,
                    cfg.table("bronze"), report.bronze_rows_repeated)
    log.info(report.summary())
    return _record(spark, cfg, report)


def _record(spark: SparkSession, cfg: Config, report: IngestReport) -> IngestReport:
    """Append ``report`` to ``ingest_runs``."""
    tables.ensure_table(spark, cfg.table("ingest_runs"), tables.INGEST_RUNS_SCHEMA, role="ingest_runs")
    spark.createDataFrame([asdict(report)], tables.INGEST_RUNS_SCHEMA).write.format("delta").mode(
        "append").option("mergeSchema", "true").saveAsTable(cfg.table("ingest_runs"))
    return report
