"""Silver: bronze reviews cleaned, filtered, de-duplicated, labelled and split, in native Spark.

Every step is a ``DataFrame -> DataFrame`` function of column expressions (no row-at-a-time Python
UDF) driven by ``preprocess`` in config; :func:`build_silver` chains them and counts what each
removes. The output depends only on bronze and the config, so a re-run on unchanged input writes an
identical table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from functools import reduce
from typing import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.ml.feature import HashingTF, MinHashLSH, NGram
from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from reviewlake import tables
from reviewlake.config import (
    Balance, Cleaning, Config, Dedupe, Filters, Labels, PreprocessSettings, Splits,
)

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SENTIMENT_BINARY = ("negative", "positive")
SENTIMENT_3 = ("negative", "neutral", "positive")
# Entities seen in review dumps; any other &name; or &#n; becomes a space.
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#0*39;": "'", "&apos;": "'",
             "&rsquo;": "'", "&lsquo;": "'", "&#0*34;": '"', "&nbsp;": " "}
# Typographic variants folded to ASCII (Spark has no NFKC normalisation; these are the ones that
# matter for matching words and phrases).
_UNICODE_FOLD = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                 "\u00a0": " ", "\u2026": "...", "\u200b": " "}


# ---------------------------------------------------------------------------------------------
# Cleaning and filtering


def _when_contains(needles: list[str], step: Callable[[Column], Column]) -> Callable[[Column], Column]:
    def guarded(c: Column) -> Column:
        found = reduce(lambda a, b: a | b, [c.contains(n) for n in needles])
        return F.when(found, step(c)).otherwise(c)

    return guarded


def _replace_entities(c: Column) -> Column:
    for entity, char in _ENTITIES.items():
        c = F.regexp_replace(c, entity, char)
    return F.regexp_replace(c, r"&#?[A-Za-z0-9]{1,8};", " ")


def cleaning_steps(rules: Cleaning) -> list[Callable[[Column], Column]]:
    """The cleaning rules in order, each a column function.

    Each costly rule runs only on texts holding what it looks for (``<``, ``&``, ``://``, ``@``):
    most reviews hold none, and a ``contains`` is far cheaper than a regex pass.
    """
    steps: list[Callable[[Column], Column]] = [
        _when_contains(["<"], lambda c: F.regexp_replace(c, r"<[^>]{0,200}>", " ")),
        _when_contains(["&"], _replace_entities),
        _when_contains(["://", "www."], lambda c: F.regexp_replace(c, r"(?i)\b(?:https?://|www\.)\S+", " ")),
        _when_contains(["@"], lambda c: F.regexp_replace(c, r"[\w.+-]+@[\w-]+\.[\w.-]+", " ")),
        lambda c: F.translate(c, "".join(_UNICODE_FOLD), "".join(v[0] for v in _UNICODE_FOLD.values())),
    ]
    if rules.lowercase:
        steps.append(F.lower)
    if rules.strip_non_alpha:
        steps.append(lambda c: F.regexp_replace(c, r"[^\p{L}\s]", " "))
    steps.append(lambda c: F.trim(F.regexp_replace(c, r"\s+", " ")))
    return steps


def add_clean_text(bronze: DataFrame, rules: Cleaning) -> DataFrame:
    """Add ``text_clean`` (from title and text, or text alone) and its length ``n_chars``.

    No HTML tags or entities, URLs or e-mail addresses; typographic unicode folded to ASCII; one space
    between words; lower-cased and letters-only when configured.
    """
    source = (F.concat_ws(". ", F.col("title"), F.col("text")) if rules.include_title else F.col("text"))
    out = bronze.withColumn("text_clean", source)
    for step in cleaning_steps(rules):  # one projection per step keeps each expression small
        out = out.withColumn("text_clean", step(F.col("text_clean")))
    return out.withColumn("n_chars", F.length("text_clean"))


def filter_reason(rules: Filters) -> Column:
    """Why a row with ``text_clean`` is filtered out (``empty``, ``too_short``, ``too_long``), or null."""
    n = F.length("text_clean")
    return (
        F.when(n == 0, F.lit("empty"))
        .when(n < rules.min_chars, F.lit("too_short"))
        .when(n > rules.max_chars, F.lit("too_long"))
    )


# ---------------------------------------------------------------------------------------------
# De-duplication


_ORDER_COLUMNS = ["review_id", "review_time", "source_line"]


def _earliest() -> Column:
    """Orders reviews earliest first: by time, a review without one last; then by line in the source
    file (so of two fastText reviews, which have no time, the first in the file); then by id.
    ``min`` of it picks the review a duplicate group keeps."""
    return F.struct(F.col("review_time").isNull().alias("no_time"), F.col("review_time").alias("time"),
                    F.col("source_line").alias("line"), F.col("review_id").alias("id"))


def _product_key() -> Column:
    # Reviews without a product (fastText, IMDb) are compared within their source.
    return F.coalesce(F.col("product_id"), F.concat(F.lit("source:"), F.col("source")))


def _later_members(keyed: DataFrame, key: str) -> DataFrame:
    """Per group of ``key``: each member other than the earliest, as ``(a, b)`` = (earliest, member)."""
    groups = (keyed.groupBy(key)
              .agg(F.min(_earliest())["id"].alias("a"), F.collect_list("review_id").alias("_members"))
              .where(F.size("_members") > 1))
    return groups.select("a", F.explode("_members").alias("b")).where("a != b")


def exact_duplicate_ids(df: DataFrame) -> DataFrame:
    """``review_id`` of every review whose normalised text (lower-case letters and digits) repeats
    an earlier review of the same product.

    Only a 128-bit hash of (product, text) and the id travel through the shuffle, not the rows: a
    collision between two different texts on 10M reviews has a probability below 10^-20.
    """
    normalised = F.lower(F.regexp_replace("text_clean", r"[^\p{L}\p{N}]+", ""))
    key = F.substring(F.unhex(F.sha2(F.concat_ws("\u0000", _product_key(), normalised), 256)), 1, 16)
    keyed = df.select(*_ORDER_COLUMNS, key.alias("_key"))
    # Each review has one key, so it is in one group at most: no distinct needed.
    return _later_members(keyed, "_key").select(F.col("b").alias("review_id"))


def drop_exact_duplicates(df: DataFrame) -> DataFrame:
    """Keep the earliest review of each (product, normalised text)."""
    return df.join(exact_duplicate_ids(df), "review_id", "left_anti")


def _with_shingles(df: DataFrame, k: int, *columns: str) -> DataFrame:
    """``columns``, ``_product`` and ``_shingles``: the word ``k``-grams of ``text_clean`` (with
    repeats), or the whole text as one shingle when it is shorter than ``k`` words."""
    tokens = df.select(*columns, _product_key().alias("_product"),
                       F.split("text_clean", " ").alias("_tokens"))  # text_clean has single spaces
    grams = NGram(n=k, inputCol="_tokens", outputCol="_grams").transform(tokens)  # JVM: no Python per row
    return grams.select(*columns, "_product", F.when(F.size("_tokens") < k, F.array(F.array_join("_tokens", " ")))
                        .otherwise(F.col("_grams")).alias("_shingles"))


def near_duplicate_ids(
    df: DataFrame, rules: Dedupe, seed: int, cache: Callable[[DataFrame], DataFrame] = lambda d: d
) -> DataFrame:
    """``review_id`` of every review that is a near-duplicate of an earlier one of the same product.

    MinHash signatures come from MLlib's ``MinHashLSH`` (``bands * rows_per_band`` hash functions)
    over the set of word ``shingle_words``-grams. Reviews of one product whose signatures agree on
    all the hashes of one band share a bucket (AND within a band, OR across bands). Each review in a
    bucket is compared with the bucket's earliest review only, so a bucket of n reviews costs n - 1
    comparisons however skewed the data (a 3.6M-review fastText corpus is one "product"): all pairs
    would be n^2 / 2. The exact Jaccard similarity of the two shingle sets then decides, so the LSH
    only proposes and never decides alone; shingles are re-derived only for the reviews proposed.
    ``cache`` is applied to the candidate pairs, which are read twice.
    """
    k, r = rules.shingle_words, rules.rows_per_band
    docs = _with_shingles(df, k, *_ORDER_COLUMNS)  # a binary HashingTF needs no array_distinct
    vectors = HashingTF(inputCol="_shingles", outputCol="_tf", numFeatures=1 << 20, binary=True).transform(docs)
    lsh = MinHashLSH(inputCol="_tf", outputCol="_mh", numHashTables=rules.bands * r, seed=seed).fit(vectors)
    # One 64-bit bucket key per (product, band): grouping by a long is ~2.5x faster than by the
    # product string; a key collision between products is ruled out again when pairs are verified.
    keys = F.array(*[F.xxhash64("_product", F.lit(b), F.slice("_mh", b * r + 1, r)) for b in range(rules.bands)])
    keyed = lsh.transform(vectors).select(*_ORDER_COLUMNS, F.explode(keys).alias("_bucket"))
    candidates = cache(_later_members(keyed, "_bucket").distinct())
    proposed = candidates.select(F.col("a").alias("review_id")).union(candidates.select(F.col("b"))).distinct()
    involved = df.join(proposed, "review_id", "left_semi")
    sh = _with_shingles(involved, k, "review_id").select(
        "review_id", "_product", F.array_distinct("_shingles").alias("_sh"))
    pairs = (candidates.join(sh.toDF("a", "_product", "sh_a"), "a")
             .join(sh.toDF("b", "_product", "sh_b"), ["b", "_product"])
             .where(F.size(F.array_intersect("sh_a", "sh_b"))
                    >= rules.jaccard_threshold * F.size(F.array_union("sh_a", "sh_b"))))
    return pairs.select(F.col("b").alias("review_id")).distinct()


# ---------------------------------------------------------------------------------------------
# Labels


def _class_of(rating: Column, classes: dict[str, list[int]], names: tuple[str, ...]) -> Column:
    out = F.lit(None).cast("int")
    for name, ratings in classes.items():
        out = F.when(rating.isin(ratings), F.lit(names.index(name))).otherwise(out)
    return out


def _label_or_rating(classes: dict[str, list[int]], names: tuple[str, ...]) -> Column:
    """The class of the source ``label`` where it is one of ``SENTIMENT_3`` (null when ``names`` lacks
    it), else the class of the ``rating``."""
    by_label = F.lit(None).cast("int")
    for index, name in enumerate(names):
        by_label = F.when(F.col("label") == name, F.lit(index)).otherwise(by_label)
    return F.when(F.col("label").isin(*SENTIMENT_3), by_label).otherwise(
        _class_of(F.col("rating"), classes, names))


_NOT_WORD = r"[^\p{L}\p{N}]+"


def _phrase_words(phrase: str) -> list[str]:
    """A phrase as the lower-case words :func:`aspect_hits` compares (runs of letters and digits)."""
    return [w for w in re.split(r"[^\w]+|_", phrase.lower()) if w]


def text_words(text: Column) -> Column:
    """The lower-case words (runs of letters and digits) of ``text``, as :func:`aspect_hits` takes them."""
    return F.split(F.lower(text), _NOT_WORD)


def aspect_hits(words: Column, padded: Column, lexicon: dict[str, list[str]]) -> list[Column]:
    """Per aspect of ``lexicon``, whether any of its phrases occurs as whole words in a text, given
    its :func:`text_words` and those words joined by single spaces with a space at each end.

    Words are runs of letters and digits, compared lower-case. The text's words are intersected
    once with the first words of all phrases (one hash set per row); each aspect then tests that
    small intersection, and a longer phrase whose first word is there a substring `` w1 w2 `` of
    the words joined by spaces. All of it compiles to Java: one case-insensitive ``\\b`` regex per
    aspect took 22 s per million reviews on this machine, this 6.6 s.
    """
    phrases = {aspect: [_phrase_words(p) for p in ps] for aspect, ps in lexicon.items()}
    firsts = sorted({w[0] for ps in phrases.values() for w in ps if w})
    found = F.array_intersect(words, F.array(*[F.lit(w) for w in firsts]))
    hits = []
    for ps in phrases.values():
        singles = sorted({w[0] for w in ps if len(w) == 1})
        hit = F.coalesce(F.arrays_overlap(found, F.array(*[F.lit(w) for w in singles])), F.lit(False)) \
            if singles else F.lit(False)
        for w in ps:
            if len(w) > 1:
                hit = hit | (F.array_contains(found, w[0]) & padded.contains(" " + " ".join(w) + " "))
        hits.append(hit)
    return hits


def add_labels(df: DataFrame, labels: Labels) -> DataFrame:
    """Add ``sentiment_binary`` (0 negative, 1 positive), ``sentiment_3`` (0, 1, 2), ``aspects``
    (multi-hot over the lexicon's aspects, in config order) and ``aspect_labels`` (their names).

    A source label (fastText, IMDb, the labeled corpora) decides both schemes where present: a
    ``neutral`` one is class 1 of ``sentiment_3`` and no class of ``sentiment_binary``. Ratings decide
    the rest, per the configured rating classes.
    """
    # Words and padded text as columns of their own: Spark then computes each once per row.
    words = df.withColumn("_words", text_words(F.col("text_clean"))).withColumn(
        "_padded", F.concat(F.lit(" "), F.array_join("_words", " "), F.lit(" ")))
    hits = [h.cast("int") for h in aspect_hits(F.col("_words"), F.col("_padded"), labels.aspects)]
    names = list(labels.aspects)
    return words.select(
        *df.columns,
        _label_or_rating(labels.sentiment_binary, SENTIMENT_BINARY).alias("sentiment_binary"),
        _label_or_rating(labels.sentiment_3, SENTIMENT_3).alias("sentiment_3"),
        F.array(*hits).alias("aspects"),
    ).withColumn(
        "aspect_labels",
        F.filter(F.array(*[F.when(F.col("aspects")[i] == 1, F.lit(n)) for i, n in enumerate(names)]),
                 lambda x: x.isNotNull()),
    )


# ---------------------------------------------------------------------------------------------
# Splits and balance


def _unit_hash(key: Column, seed: int) -> Column:
    """A number in [0, 1) that depends only on ``key`` and ``seed``."""
    return F.pmod(F.xxhash64(key, F.lit(seed)), F.lit(1_000_000)) / 1_000_000


def add_split(df: DataFrame, rules: Splits, seed: int) -> DataFrame:
    """Add ``split``: train / validation / test by a hash of ``review_id`` (or ``product_id``).

    The split of a review depends on nothing but its key, so it never changes when rows are added.
    With ``by_product``, a review without a product (fastText, IMDb) is split by its own id, so such
    a source is not put whole into one split.
    """
    key = F.coalesce(F.col("product_id"), F.col("review_id")) if rules.by_product else F.col("review_id")
    u = _unit_hash(key, seed)
    return df.withColumn(
        "split",
        F.when(u < rules.train, F.lit("train"))
        .when(u < rules.train + rules.validation, F.lit("validation"))
        .otherwise(F.lit("test")),
    )


def balance(df: DataFrame, rules: Balance, seed: int) -> DataFrame:
    """Undersample each class of ``rules.label`` to the smallest class, within each split named.

    Rows are kept in order of a hash of their id, so the same rows are kept on every run. Rows
    without that label, and splits not named, are kept whole.
    """
    if not rules.enabled:
        return df
    label = F.col(rules.label)
    in_scope = F.col("split").isin(rules.splits) & label.isNotNull()
    sizes = (df.where(in_scope).groupBy("split", rules.label).count()
             .groupBy("split").agg(F.min("count").alias("_keep")))
    window = Window.partitionBy("split", rules.label).orderBy(_unit_hash(F.col("review_id"), seed), "review_id")
    ranked = df.where(in_scope).withColumn("_rank", F.row_number().over(window)).join(sizes, "split")
    kept = ranked.where(F.col("_rank") <= F.col("_keep")).drop("_rank", "_keep")
    return kept.unionByName(df.where(~in_scope))


def class_weights(silver: DataFrame, label: str) -> DataFrame:
    """Weights inverse to class frequency in the train split, normalised to average 1 over rows."""
    counts = silver.where((F.col("split") == "train") & F.col(label).isNotNull()).groupBy(label).count()
    totals = counts.agg(F.sum("count").alias("_total"), F.count("*").alias("_classes"))
    return counts.crossJoin(totals).select(
        F.lit(label).alias("scheme"),
        F.col(label).cast("int").alias("class"),
        F.col("count").alias("train_rows"),
        (F.col("_total") / (F.col("_classes") * F.col("count"))).alias("weight"),
    )


# ---------------------------------------------------------------------------------------------
# The whole stage


SILVER_COLUMNS = [
    "review_id", "source", "product_id", "category", "title", "text", "text_clean", "n_chars", "rating",
    "label", "sentiment_binary", "sentiment_3", "aspects", "aspect_labels", "review_time", "verified",
    "helpful_votes", "split",
]


@dataclass(frozen=True)
class PreprocessReport:
    """What one preprocess run read, removed and wrote."""

    run_id: str
    bronze_version: int
    config_hash: str
    rows_in: int
    rows_out: int
    removed: dict[str, int]
    splits: dict[str, int]
    silver_version: int
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: bool = False

    def summary(self) -> str:
        """One line for a person."""
        if self.skipped:
            return (f"preprocess: silver is up to date with bronze version {self.bronze_version} and "
                    f"this config ({self.config_hash}); nothing to do (--force rebuilds)")
        removed = ", ".join(f"{k} {v:,}" for k, v in self.removed.items())
        splits = ", ".join(f"{k} {v:,}" for k, v in self.splits.items())
        return f"preprocess: {self.rows_in:,} bronze rows -> {self.rows_out:,} silver rows ({splits}); removed: {removed}"


def _small(ids: DataFrame, rows: int) -> DataFrame:
    """``ids`` marked for a broadcast join when it is small enough to ship to every task."""
    return F.broadcast(ids) if rows < 1_000_000 else ids


def build_silver(
    bronze: DataFrame, rules: PreprocessSettings, cached: list[DataFrame], seconds: dict[str, float]
) -> tuple[DataFrame, dict[str, int]]:
    """Run every step on ``bronze``; return the silver rows and how many rows each step removed.

    Frames that later steps read more than once are cached and appended to ``cached``; the returned
    frame reads from them, so unpersist them only after writing it. ``seconds`` receives the time of
    each step that runs a Spark job (the rest run within the final write).
    """
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 2)
        clock = now
        log.info("preprocess: %s done (%.1fs)", step, seconds[step])

    def _cache(df: DataFrame) -> DataFrame:
        cached.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    spark = bronze.sparkSession
    sc = spark.sparkContext
    sc.setJobDescription("preprocess: clean and filter")
    # Bronze of one big source is one Parquet file with one row group per 128 MB: read as it is, a
    # 1M-review file is one task and every step up to the first shuffle runs on one core.
    parts = max(int(spark.conf.get("spark.sql.shuffle.partitions") or 1), sc.defaultParallelism)
    bronze = bronze.repartition(parts, "review_id")
    cleaned = add_clean_text(bronze, rules.cleaning).withColumn("_filter", filter_reason(rules.filters))
    cleaned = _cache(cleaned)
    removed = {f"filtered_{r['_filter']}": r["count"]
               for r in cleaned.groupBy("_filter").count().collect() if r["_filter"] is not None}
    kept = cleaned.where(F.col("_filter").isNull()).drop("_filter")
    lap("clean_filter")
    if rules.dedupe.exact:
        sc.setJobDescription("preprocess: exact duplicates")
        exact = _cache(exact_duplicate_ids(kept))
        removed["exact_duplicate"] = exact.count()
        kept = kept.join(_small(exact, removed["exact_duplicate"]), "review_id", "left_anti")
        lap("exact_dedupe")
    if rules.dedupe.near:
        sc.setJobDescription("preprocess: near duplicates (MinHashLSH)")
        near = _cache(near_duplicate_ids(kept, rules.dedupe, rules.seed, _cache))
        removed["near_duplicate"] = near.count()
        lap("near_dedupe")
        kept = kept.join(_small(near, removed["near_duplicate"]), "review_id", "left_anti")
    labelled = add_split(add_labels(kept, rules.labels), rules.splits, rules.seed)
    silver = balance(labelled, rules.balance, rules.seed)
    if rules.balance.enabled:
        sc.setJobDescription("preprocess: balance")
        labelled = _cache(labelled)
        silver = _cache(balance(labelled, rules.balance, rules.seed))
        removed["balanced_out"] = labelled.count() - silver.count()
        lap("label_split_balance")
    sc.setJobDescription(None)  # type: ignore[arg-type]
    return silver.select(*SILVER_COLUMNS), removed


def config_fingerprint(cfg: Config) -> str:
    """A hash of the settings that shape silver: when it changes, silver is rebuilt."""
    payload = json.dumps(cfg.preprocess.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]




def preprocess(spark: SparkSession, cfg: Config, force: bool = False) -> PreprocessReport:
    """Rebuild ``reviews_silver`` from ``reviews_bronze`` unless it is up to date.

    Silver is up to date when the last run used the current bronze version and the same
    ``preprocess`` config. The table is overwritten in one Delta commit, partitioned by split and
    source; ``preprocess_runs`` records the bronze version, config hash and counts, and
    ``class_weights`` the weights of the configured balance label.
    """
    if not spark.catalog.tableExists(cfg.table("bronze")):
        raise ValueError(f"table {cfg.table('bronze')} does not exist: run ingest first")
    rules = cfg.preprocess
    bronze_version = tables.table_version(DeltaTable.forName(spark, cfg.table("bronze")))
    fingerprint = config_fingerprint(cfg)
    runs = tables.ensure_table(spark, cfg.table("preprocess_runs"), tables.PREPROCESS_RUNS_SCHEMA,
                              role="preprocess_runs")
    last = runs.toDF().orderBy(F.col("finished_at").desc()).first()
    if (not force and last is not None and spark.catalog.tableExists(cfg.table("silver"))
            and last["bronze_version"] == bronze_version and last["config_hash"] == fingerprint):
        return PreprocessReport(last["run_id"], bronze_version, fingerprint, last["rows_in"],
                                last["rows_out"], dict(last["removed"]), dict(last["splits"]),
                                last["silver_version"], skipped=True)

    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    started = datetime.now(timezone.utc)
    bronze = spark.read.format("delta").option("versionAsOf", bronze_version).table(cfg.table("bronze"))
    cached: list[DataFrame] = []
    seconds: dict[str, float] = {}
    try:
        rows_in = bronze.count()
        silver, removed = build_silver(bronze, rules, cached, seconds)
        spark.sparkContext.setJobDescription(f"preprocess: write {cfg.table('silver')}")
        clock = time.perf_counter()
        tables.overwrite(silver, cfg.table("silver"), "silver", ["split", "source"])
        seconds["label_split_write"] = round(time.perf_counter() - clock, 2)
    finally:
        for frame in cached:
            frame.unpersist()
        spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
    written = spark.table(cfg.table("silver"))
    splits = {r["split"]: r["count"] for r in written.groupBy("split").count().collect()}
    tables.overwrite(class_weights(written, rules.balance.label), cfg.table("class_weights"), "class_weights")
    report = PreprocessReport(
        run_id=run_id, bronze_version=bronze_version, config_hash=fingerprint, rows_in=rows_in,
        rows_out=sum(splits.values()), removed=removed, splits=splits,
        silver_version=tables.table_version(DeltaTable.forName(spark, cfg.table("silver"))),
        seconds=seconds,
    )
    spark.createDataFrame(
        [(run_id, started, datetime.now(timezone.utc), bronze_version, fingerprint, rows_in,
          report.rows_out, removed, splits, report.silver_version)],
        tables.PREPROCESS_RUNS_SCHEMA,
    ).write.format("delta").mode("append").saveAsTable(cfg.table("preprocess_runs"))
    log.info(report.summary())
    return report
