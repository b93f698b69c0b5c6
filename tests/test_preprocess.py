"""Silver: each rule on small frames with exact expected rows, split stability, near-duplicates,
and the whole stage end to end (identical re-runs, skip when up to date, quality summary)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from reviewlake import preprocess as P
from reviewlake.config import Balance, Cleaning, Config, Dedupe, Filters, Splits
from reviewlake.generate import CorpusSpec, generate
from reviewlake.generate import reviews as corpus_reviews
from reviewlake.ingest import ingest
from reviewlake.quality import write_quality_report
from tests.conftest import FIXTURES, make_config

REVIEW = ("review_id string, source string, product_id string, title string, text string, "
          "rating int, label string, review_time timestamp")


def reviews(spark: SparkSession, rows: list[tuple]) -> DataFrame:  # type: ignore[type-arg]
    return spark.createDataFrame(rows, REVIEW).withColumn("source_line", F.lit(None).cast("long"))


def test_cleaning_rules(spark: SparkSession) -> None:
    df = reviews(spark, [
        ("1", "s", None, "Nice", "Great <b>sound</b>&amp; bass<br />see http://x.co/a?b=1 or mail me@ex.com",
         5, None, None),
        ("2", "s", None, None, "It\u2019s  \u201cfine\u201d\u00a0\u2014 really\n\n ok", 3, None, None),
        ("3", "s", None, None, "Caf\u00e9 &#233; 5 stars!!!", 5, None, None),
    ])
    default = P.add_clean_text(df, Cleaning()).select("review_id", "text_clean")
    assertDataFrameEqual(default, [
        ("1", "nice. great sound & bass see or mail"),
        ("2", "it's \"fine\" - really ok"),
        ("3", "caf\u00e9 stars!!!".replace("stars", "5 stars")),
    ])
    letters = P.add_clean_text(df, Cleaning(include_title=False, lowercase=False, strip_non_alpha=True))
    assertDataFrameEqual(letters.select("review_id", "text_clean"), [
        ("1", "Great sound bass see or mail"),
        ("2", "It s fine really ok"),
        ("3", "Caf\u00e9 stars"),
    ])


def test_filters_name_their_reason(spark: SparkSession) -> None:
    df = spark.createDataFrame([("a", ""), ("b", "short"), ("c", "just right"), ("d", "x" * 30)],
                               "review_id string, text_clean string")
    out = df.select("review_id", P.filter_reason(Filters(min_chars=6, max_chars=20)).alias("r"))
    assertDataFrameEqual(out, [("a", "empty"), ("b", "too_short"), ("c", None), ("d", "too_long")])


def test_exact_duplicates_keep_the_earliest_within_a_product(spark: SparkSession) -> None:
    t = datetime
    df = P.add_clean_text(reviews(spark, [
        ("late", "s", "P1", None, "Works great!", 5, None, t(2020, 1, 2)),
        ("early", "s", "P1", None, "works  GREAT", 5, None, t(2020, 1, 1)),
        ("other-product", "s", "P2", None, "Works great!", 5, None, t(2019, 1, 1)),
        ("no-time", "s", "P1", None, "Works great.", 5, None, None),
        ("distinct", "s", "P1", None, "Works well!", 5, None, t(2021, 1, 1)),
    ]), Cleaning())
    kept = P.drop_exact_duplicates(df).select("review_id")
    assertDataFrameEqual(kept, [("early",), ("other-product",), ("distinct",)])


def test_near_duplicate_found_and_distinct_reviews_left_alone(spark: SparkSession) -> None:
    base = ("I bought this charger for my office last spring and it has worked every single day "
            "without any trouble, charging my phone and tablet quickly and quietly")
    t = datetime
    df = P.add_clean_text(reviews(spark, [
        ("orig", "s", "P1", None, base, 5, None, t(2020, 1, 1)),
        ("repost", "s", "P1", None, base + ". Thanks!", 5, None, t(2020, 2, 1)),
        ("same-text-other-product", "s", "P2", None, base + ". Thanks!", 5, None, t(2020, 2, 1)),
        ("different", "s", "P1", None, "The cable frayed within a week and the plug got hot, "
         "so I returned it and bought a different brand that costs less", 1, None, t(2020, 3, 1)),
        ("similar-topic", "s", "P1", None, "I bought this charger for my car last winter and it stopped "
         "working after two weeks, which was a real disappointment", 2, None, t(2020, 4, 1)),
    ]), Cleaning())
    near = P.near_duplicate_ids(df, Dedupe(), seed=17)
    assertDataFrameEqual(near, [("repost",)])


def test_a_large_cluster_of_reposts_collapses_to_its_earliest(spark: SparkSession) -> None:
    # 60 variants of one review of one product share LSH buckets: every one but the earliest goes,
    # the one without a time counts as the latest, and the other product's copy stays.
    base = ("Ordered the blender last summer and it crushes ice in seconds, the jug is easy to clean "
            "and the motor is quieter than my old one, very happy with it overall")
    rows = [(f"v{i:02d}", "s", "P1", None, f"{base} thanks {i}", 5, None, datetime(2021, 1, 1 + i % 28, i % 24))
            for i in range(60)]
    rows[0] = ("v00", "s", "P1", None, f"{base} thanks 0", 5, None, None)
    rows.append(("first", "s", "P1", None, base, 5, None, datetime(2020, 1, 1)))
    rows.append(("elsewhere", "s", "P2", None, base, 5, None, datetime(2022, 1, 1)))
    near = P.near_duplicate_ids(P.add_clean_text(reviews(spark, rows), Cleaning()), Dedupe(), seed=3)
    assertDataFrameEqual(near, [(f"v{i:02d}",) for i in range(60)])


def test_planted_reposts_of_a_generated_corpus_are_found(spark: SparkSession, cfg: Config,
                                                        tmp_path: Path) -> None:
    # fastText reviews have no time: of two copies, the first in the file stays.
    corpus = generate("fasttext", tmp_path, 4000, seed=11, malformed_share=0.0, duplicate_share=0.04)
    spec = CorpusSpec(11, 4000 // 25, 0.0, 0.03, 0.04)
    planted = {kind: {r.index + 1 for r in corpus_reviews(spec, "fasttext", 0, 4000) if r.repost == kind}
               for kind in ("exact", "near")}
    assert corpus.reposts == {k: len(v) for k, v in planted.items()} and min(corpus.reposts.values()) > 50
    ingest(spark, cfg, "fasttext", corpus.files[0])
    bronze = P.add_clean_text(spark.table(cfg.table("bronze")), Cleaning())
    exact_ids = P.exact_duplicate_ids(bronze)
    kept = bronze.join(exact_ids, "review_id", "left_anti")
    near_ids = P.near_duplicate_ids(kept, Dedupe(), seed=5)

    def lines(ids: DataFrame) -> set[int]:
        return {r[0] for r in bronze.join(ids, "review_id", "left_semi").select("source_line").collect()}

    exact, near = lines(exact_ids), lines(near_ids)
    assert exact == planted["exact"]  # no accidental copies among generated texts
    assert near <= planted["near"] and len(near) >= 0.95 * len(planted["near"])


def test_label_schemes_and_aspects(spark: SparkSession, cfg: Config) -> None:
    df = P.add_clean_text(reviews(spark, [
        ("r1", "s", None, None, "Great value for money, shipping was fast", 1, None, None),
        ("r3", "s", None, None, "The box was crushed but it works", 3, None, None),
        ("r4", "s", None, None, "Runs small; customer service helped", 4, None, None),
        ("ft", "fasttext", None, None, "Fell apart. Overpriced.", None, "negative", None),
    ]), Cleaning())
    labels = cfg.preprocess.labels
    out = P.add_labels(df, labels).select("review_id", "sentiment_binary", "sentiment_3", "aspect_labels")
    assertDataFrameEqual(out, [
        ("r1", 0, 0, ["shipping", "value for money"]),  # config order
        ("r3", None, 1, ["packaging", "functionality"]),
        ("r4", 1, 2, ["customer service", "size/fit"]),
        ("ft", 0, 0, ["price", "durability"]),  # the source label decides sentiment_3 too
    ])
    vector = P.add_labels(df, labels).where("review_id = 'r1'").select("aspects").first()
    assert vector is not None and vector["aspects"] == [0, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    joint = labels.model_copy(update={"sentiment_binary": {"negative": [1, 2], "positive": [5]}})
    only5 = P.add_labels(df, joint).where("review_id = 'r4'").select("sentiment_binary").first()
    assert only5 is not None and only5["sentiment_binary"] is None


def test_aspect_phrases_match_whole_words_only(spark: SparkSession) -> None:
    lexicon = {"quality": ["well made", "sturdy"], "functionality": ["works", "Work"],
               "value": ["bang for", "for the money"]}
    df = spark.createDataFrame([
        ("a", "Well-made, STURDY... and it works!"),
        ("b", "my coworker liked the workshop; money well spent"),  # no whole word, no phrase
        ("c", "the most bang for the buck"),
        ("d", "made well, for money"),  # words of phrases, not in order
        ("e", "work"),
    ], "review_id string, text_clean string")
    words = df.withColumn("w", P.text_words(F.col("text_clean"))).withColumn(
        "p", F.concat(F.lit(" "), F.array_join("w", " "), F.lit(" ")))
    hits = P.aspect_hits(F.col("w"), F.col("p"), lexicon)
    out = words.select("review_id", *[h.alias(name) for h, name in zip(hits, lexicon)])
    assertDataFrameEqual(out, [
        ("a", True, True, False), ("b", False, False, False), ("c", False, False, True),
        ("d", False, False, False), ("e", False, True, False),
    ])


def test_splits_follow_ratios_and_never_move_when_rows_are_added(spark: SparkSession) -> None:
    ids = spark.range(20_000).select(F.col("id").cast("string").alias("review_id"),
                                     F.lit("s").alias("source"), F.lit(None).cast("string").alias("product_id"))
    split = P.add_split(ids, Splits(), seed=17)
    shares = {r["split"]: r["count"] / 20_000 for r in split.groupBy("split").count().collect()}
    assert abs(shares["train"] - 0.8) < 0.01 and abs(shares["validation"] - 0.1) < 0.01
    more = spark.range(30_000).select(F.col("id").cast("string").alias("review_id"),
                                      F.lit("s").alias("source"), F.lit(None).cast("string").alias("product_id"))
    again = P.add_split(more, Splits(), seed=17).join(split.withColumnRenamed("split", "before"), "review_id")
    assert again.where("split != before").count() == 0


def test_splits_by_product_keep_a_product_in_one_split(spark: SparkSession) -> None:
    df = spark.range(5000).select(F.col("id").cast("string").alias("review_id"), F.lit("s").alias("source"),
                                  (F.col("id") % 50).cast("string").alias("product_id"))
    split = P.add_split(df, Splits(by_product=True), seed=1)
    assert split.groupBy("product_id").agg(F.countDistinct("split").alias("n")).where("n > 1").count() == 0


def test_balance_undersamples_to_the_smallest_class(spark: SparkSession) -> None:
    rows = [(str(i), "train", 1) for i in range(30)] + [(str(100 + i), "train", 0) for i in range(7)]
    rows += [(str(200 + i), "test", 1) for i in range(5)] + [("u", "train", None)]
    df = spark.createDataFrame(rows, "review_id string, split string, sentiment_binary int")
    out = P.balance(df, Balance(enabled=True), seed=3)
    counts = {(r["split"], r["sentiment_binary"]): r["count"]
              for r in out.groupBy("split", "sentiment_binary").count().collect()}
    assert counts == {("train", 1): 7, ("train", 0): 7, ("test", 1): 5, ("train", None): 1}
    assertDataFrameEqual(P.balance(df, Balance(enabled=True), seed=3), out)


def test_preprocess_end_to_end(spark: SparkSession, spark_home: Path, cfg: Config, tmp_path: Path) -> None:
    cfg = make_config(spark_home, cfg.database, f"paths.reports={tmp_path}")
    ingest(spark, cfg, "amazon-json", str(FIXTURES / "reviews_Musical_Instruments_5.json"))
    ingest(spark, cfg, "fasttext", str(FIXTURES / "amazon_polarity.ft.txt"))
    first = P.preprocess(spark, cfg)
    assert first.rows_in == 6 and first.rows_out + sum(first.removed.values()) == 6
    silver = spark.table(cfg.table("silver"))
    snapshot = silver.collect()
    assert P.preprocess(spark, cfg).skipped
    rebuilt = P.preprocess(spark, cfg, force=True)
    assert not rebuilt.skipped and rebuilt.silver_version > first.silver_version
    assertDataFrameEqual(spark.table(cfg.table("silver")), snapshot)
    runs = spark.table(cfg.table("preprocess_runs")).select("bronze_version", "rows_in")
    assertDataFrameEqual(runs, [(first.bronze_version, 6), (first.bronze_version, 6)])
    png = write_quality_report(spark, cfg)
    assert png.stat().st_size > 10_000
    quality = spark.table(cfg.table("silver_quality"))
    assert quality.where("metric = 'rows'").first()["value"] == float(first.rows_out)  # type: ignore[index]


def test_class_weights_are_inverse_to_frequency(spark: SparkSession) -> None:
    rows = [("train", 1)] * 30 + [("train", 0)] * 10 + [("test", 0)] * 50 + [("train", None)]
    df = spark.createDataFrame(rows, "split string, sentiment_binary int")
    weights = P.class_weights(df, "sentiment_binary")
    assertDataFrameEqual(weights, [("sentiment_binary", 1, 30, 40 / 60), ("sentiment_binary", 0, 10, 40 / 20)])
