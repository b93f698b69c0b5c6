"""Batch scoring and the gold tables: scores equal the models' own output for every family, incremental
runs, a scoring job killed half-way and run again, aggregates of a hand-built scores table against
numbers worked out by hand, and the gold tables queried by the shipped SQL from a new process."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest
from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from reviewlake import registry, tables
from reviewlake.aggregate import GOLD, aggregate
from reviewlake.config import Config
from reviewlake.registry import ModelVersion
from reviewlake.score import SCORES_SCHEMA, ScoreReport, score_reviews
from reviewlake.topics import MODEL_TOPICS_SCHEMA
from reviewlake.families import train
from reviewlake.training.stage import TrainReport, TrainRequest
from tests.conftest import REPO

QUERIES = sorted((REPO / "conf" / "queries").glob("*.sql"))


def with_settings(cfg: Config, database: str, **score: object) -> Config:
    """``cfg`` in another database, with ``score`` settings changed."""
    return cfg.model_copy(update={"database": database, "score": cfg.score.model_copy(update=score)})


def copy_silver(spark: SparkSession, source: Config, cfg: Config, where: str = "true") -> int:
    """A copy of ``source``'s silver rows matching ``where`` as ``cfg``'s silver table; returns its rows."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {cfg.database}")
    spark.sql(f"CREATE OR REPLACE TABLE {cfg.table('silver')} USING delta AS "
              f"SELECT * FROM {source.table('silver')} WHERE {where}")
    return spark.table(cfg.table("silver")).count()


def one_per_key(spark: SparkSession, cfg: Config, model: str, version: str) -> tuple[int, int]:
    rows = spark.table(cfg.table("scores")).where(f"model_name = '{model}' AND model_version = '{version}'")
    return rows.count(), rows.select("review_id").distinct().count()


@pytest.fixture(scope="module")
def scored(spark: SparkSession, train_silver: Config, t_multitask: TrainReport,
           t_joint: tuple[Config, TrainReport]) -> tuple[Config, dict[str, ScoreReport]]:
    """The training tests' silver copied into a database of its own, scored by t-multitask v1 and t-joint v1."""
    cfg = with_settings(train_silver, "score_test")
    copy_silver(spark, train_silver, cfg)
    # t-joint's training stored its encoder's embeddings of silver: scoring reuses them.
    spark.sql(f"CREATE OR REPLACE TABLE {cfg.table('embeddings')} USING delta AS "
              f"SELECT * FROM {train_silver.table('embeddings')}")
    refs = (f"t-multitask/{t_multitask.version}", f"t-joint/{t_joint[1].version}")
    return cfg, {ref: score_reviews(spark, cfg, ref) for ref in refs}


def test_every_pyfunc_scores_as_its_model_predicts(spark: SparkSession, scored: tuple[Config, dict[str, ScoreReport]],
                                                   train_silver: Config, t_multitask: TrainReport) -> None:
    """Batch scores equal each model's own predictions, for every pyfunc a family registers: multitask (the
    BitLinear variant registers the same one), its int8 variant (a quantized load), joint-topic (stored
    embeddings), bilstm, and the MLlib baseline (scored in Spark itself)."""
    cfg, reports = scored[0], dict(scored[1])
    small = train_silver.model_copy(update={"train": train_silver.train.model_copy(update={
        "bilstm": train_silver.train.bilstm.model_copy(update={"batch_size": 32, "epochs": 1, "max_length": 64,
                                                               "vocab_size": 2000}), "eval_rows": 200})})
    for model, source in (("bilstm", None), ("multitask-int8", f"t-multitask/{t_multitask.version}")):
        report = train(spark, small, TrainRequest(model=model, backend="torch-distributor", num_proc=1,
                                                  local_mode=True, use_gpu=False, name=f"t-score-{model}",
                                                  source_model=source))
        reports[f"{report.name}/{report.version}"] = score_reviews(spark, cfg, f"{report.name}/{report.version}")
    # The MLlib baseline scores natively in Spark, with no Python worker.
    linear = cfg.model_copy(update={"train": cfg.train.model_copy(update={"linear": cfg.train.linear.model_copy(
        update={"reg_params": [0.01], "num_features": 4096}), "eval_rows": 200})})
    t_linear = train(spark, train_silver.model_copy(update={"train": linear.train}), TrainRequest(
        model="linear", backend="torch-distributor", num_proc=1, local_mode=True, use_gpu=False, name="t-linear"))
    reports[f"t-linear/{t_linear.version}"] = score_reviews(spark, cfg, f"t-linear/{t_linear.version}")
    silver = spark.table(cfg.table("silver"))
    total = silver.count()
    for ref, report in reports.items():
        assert (report.scored, report.already, report.statuses) == (total, 0, {"ok": total}), ref
        assert one_per_key(spark, cfg, *ref.split("/")) == (total, total)
    sample = silver.orderBy("review_id").limit(12).select("review_id", "text_clean").toPandas()
    for ref in reports:
        name, version = ref.split("/")
        got = (spark.table(cfg.table("scores")).where(f"model_name = '{name}' AND model_version = '{version}'")
               .join(spark.createDataFrame(sample[["review_id"]]), "review_id").orderBy("review_id").toPandas())
        direct = registry.load(cfg, ref).predict(pd.DataFrame({"text": sample["text_clean"]}))
        assert list(got["sentiment"]) == list(direct["sentiment"]), ref
        # (t-joint scored the embeddings stored at training: equal to the text's up to float rounding; dynamic
        # int8 quantizes each batch's activations with that batch's own scale, so other batches move it a little)
        atol = 0.03 if "int8" in name else 1e-4
        assert np.allclose(got["sentiment_prob"], direct["sentiment_prob"].astype(float), atol=atol), ref
        assert np.allclose(got["rating_pred"].astype(float), direct["rating_pred"].astype(float), atol=4 * atol,
                           equal_nan=True), ref  # the rating is 1 + 4 sigmoid: 4 times the probability's scale
        assert [";".join(a) for a in got["aspects"]] == list(direct["aspects"]), ref
        if "topic_id" in direct:
            assert list(got["topic_id"]) == list(direct["topic_id"].astype(int)), ref
            assert list(got["topic_label"]) == list(direct["topic_label"]), ref
        else:
            assert got["topic_id"].isna().all()
    multitask = spark.table(cfg.table("scores")).where("model_name = 't-multitask'").first()
    assert multitask is not None and set(multitask["aspect_probs"]) == set(cfg.preprocess.labels.aspects)
    assert multitask["model_type"] == "multitask" and multitask["silver_version"] == 0


def test_incremental_runs_score_new_and_changed_reviews_only(spark: SparkSession, train_silver: Config,
                                                             t_multitask: TrainReport) -> None:
    cfg = with_settings(train_silver, "score_incremental", chunk_rows=400, max_chars=5000)  # silver: <= 5000
    half = copy_silver(spark, train_silver, cfg, "xxhash64(review_id) % 2 = 0")
    first = score_reviews(spark, cfg, f"t-multitask/{t_multitask.version}")
    assert (first.scored, first.already, first.chunks) == (half, 0, -(-half // 400))
    # New reviews arrive, two of them bad: no text, and text over score.max_chars.
    rest = spark.table(train_silver.table("silver")).where("xxhash64(review_id) % 2 != 0")
    template = rest.limit(1)
    def review(review_id: str, text: Any) -> Any:  # raw text (what a version cleans by its own rules) and silver's
        return (template.withColumn("review_id", F.lit(review_id)).withColumn("title", F.lit(None).cast("string"))
                .withColumn("text", text).withColumn("text_clean", F.trim(text)))

    bad = review("bad-empty", F.lit("\u200b ")).unionByName(review("bad-long", F.repeat(F.lit("works well. "), 500)))
    rest.unionByName(bad).write.format("delta").mode("append").saveAsTable(cfg.table("silver"))
    total = spark.table(cfg.table("silver")).count()
    second = score_reviews(spark, cfg, f"t-multitask/{t_multitask.version}")
    assert (second.scored, second.already) == (total - half, half)
    assert second.statuses["empty_text"] == 1 and second.statuses["truncated"] == 1
    rows = {r["review_id"]: r for r in spark.table(cfg.table("scores")).where("review_id LIKE 'bad-%'").collect()}
    assert rows["bad-empty"]["status"] == "empty_text" and rows["bad-empty"]["sentiment"] is None
    assert rows["bad-long"]["status"] == "truncated" and rows["bad-long"]["sentiment"] in ("negative", "positive")
    assert score_reviews(spark, cfg, f"t-multitask/{t_multitask.version}").scored == 0
    # A review whose text changed is scored again, in place.
    changed = spark.table(cfg.table("silver")).where("review_id NOT LIKE 'bad-%'").orderBy("review_id").first()
    assert changed is not None
    DeltaTable.forName(spark, cfg.table("silver")).update(F.col("review_id") == changed["review_id"],
                                                          {"text": F.lit("terrible, it broke in a day"),
                                                           "title": F.lit(None), "text_clean": F.lit("terrible, it broke in a day")})
    assert score_reviews(spark, cfg, f"t-multitask/{t_multitask.version}").scored == 1
    full = score_reviews(spark, cfg, f"t-multitask/{t_multitask.version}", full=True)
    assert (full.scored, full.already) == (total, 0)
    assert one_per_key(spark, cfg, "t-multitask", t_multitask.version) == (total, total)


def test_scoring_runs_the_model_once_per_review(spark: SparkSession, train_silver: Config, t_multitask: TrainReport,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk's scores are persisted for the MERGE, which reads its source twice: the model runs once per
    review (it ran twice while the rows carried current_timestamp(), which kept the MERGE off the cache)."""
    from reviewlake import score

    cfg = with_settings(train_silver, "score_once")
    rows = copy_silver(spark, train_silver, cfg, "xxhash64(review_id) % 4 = 0")
    batches, real = tmp_path / "batches", score.pyfunc_scorer

    def counting(tracking_uri: str, reference: str, threads: int) -> Any:
        scorer = real(tracking_uri, reference, threads)

        def counted(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            def tee() -> Iterator[pd.DataFrame]:
                for frame in frames:
                    with open(batches, "a") as out:
                        out.write(f"{len(frame)}\n")
                    yield frame

            yield from scorer(tee())

        return counted

    monkeypatch.setattr(score, "pyfunc_scorer", counting)
    report = score_reviews(spark, cfg, f"t-multitask/{t_multitask.version}")
    assert report.scored == rows == sum(int(n) for n in batches.read_text().split())


def hand_built(spark: SparkSession, cfg: Config) -> tuple[ModelVersion, ModelVersion]:
    """Silver, scores and topics small enough to aggregate by hand (see the expectations below)."""
    t = datetime.fromisoformat
    silver = [("r1", "p1", "Musical Instruments", 1, t("2026-10-05 10:00:00"), ["price", "quality"]),
              ("r2", "p1", "Musical Instruments", 2, t("2026-11-02 10:00:00"), ["price"]),
              ("r3", "p2", "Musical Instruments", 5, t("2026-11-20 10:00:00"), ["quality"]),
              ("r4", "p3", "Home", None, t("2026-11-03 10:00:00"), []),
              ("r5", "p3", "Home", 4, None, ["price"]),
              ("r6", "p2", "Musical Instruments", 3, t("2026-11-21 10:00:00"), ["price"])]
    spark.createDataFrame(silver, "review_id string, product_id string, category string, rating int, "
                                  "review_time timestamp, aspect_labels array<string>").write.format("delta").saveAsTable(
        cfg.table("silver"))
    spark.createDataFrame([("p1", "Amp"), ("p2", "Tuner"), ("p3", "Lamp"), ("p3", None)],
                          "product_id string, product_title string").write.format("delta").saveAsTable(
        cfg.table("bronze"))
    now = datetime(2026, 12, 1)

    def score(review: str, model: str, version: str, status: str, sentiment: str | None = None,
              rating: float | None = None, aspects: list[str] | None = None, topic: int | None = None,
              prob: float | None = None, label: str | None = None) -> tuple[object, ...]:
        return (review, model, version, "x", "h", status, sentiment, 0.9, rating, aspects or [], {}, topic, prob, label,
                0, now)

    # Aspects count as silver's lexicon has them, whatever the model's aspect head predicted.
    rows = [score("r1", "m", "1", "ok", "negative", 1.5),
            score("r2", "m", "1", "ok", "negative", 2.0, ["shipping"]),
            score("r3", "m", "1", "truncated", "positive", 4.5, ["quality"]),
            score("r4", "m", "1", "ok", "positive", 4.0, ["price"]),
            score("r5", "m", "1", "ok", "neutral", 3.0, ["price"]),
            score("r6", "m", "1", "empty_text"),
            score("r1", "m", "0", "ok", "positive", 5.0, ["price"]),   # another version: not counted
            score("r1", "j", "2", "ok", "negative", topic=0, prob=0.9, label="t0"),
            score("r2", "j", "2", "ok", "negative", topic=0, prob=0.8, label="t0"),
            score("r3", "j", "2", "ok", "positive", topic=1, prob=0.7, label="t1"),
            score("r4", "j", "2", "ok", "positive", topic=1, prob=0.95, label="t1"),
            score("r5", "j", "2", "ok", "positive", topic=0, prob=0.6, label="t0"),
            score("r6", "j", "2", "empty_text")]
    spark.createDataFrame(rows, SCORES_SCHEMA).write.format("delta").saveAsTable(cfg.table("scores"))
    topics = [("j", "2", 0, "cheap / broke / amp", ["cheap", "broke", "amp"], [3.0, 2.0, 1.0], ["r1"], 3, None, None,
               None, None, now),
              ("j", "2", 1, "bright / tuner / lamp", ["bright", "tuner", "lamp"], [3.0, 2.0, 1.0], ["r3"], 2, None,
               None, None, None, now)]
    spark.createDataFrame(topics, MODEL_TOPICS_SCHEMA).write.format("delta").saveAsTable(cfg.table("model_topics"))
    return ModelVersion("m", "1", "multitask"), ModelVersion("j", "2", "joint-topic")


def test_aggregates_of_a_hand_built_table_are_the_hand_computed_numbers(spark: SparkSession, cfg: Config,
                                                                        tmp_path: Path) -> None:
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"reports": tmp_path}),
                                 "aggregate": cfg.aggregate.model_copy(update={"examples": 2})})
    sentiment, topics = hand_built(spark, cfg)
    report = aggregate(spark, cfg, sentiment, topics)
    assert report.rows == {"topic_sentiment": 2, "topic_sentiment_by_category": 4, "topic_sentiment_by_product": 4,
                           "topic_sentiment_monthly": 4, "aspect_sentiment": 5}
    shares = "negative long, neutral long, positive long, share_negative double, share_neutral double, share_positive double"
    overview = ["topic_id", "topic_label", "top_terms", "example_review_ids", "reviews", "negative", "neutral",
                "positive", "share_negative", "share_neutral", "share_positive", "mean_rating", "mean_rating_pred"]
    assertDataFrameEqual(spark.table(cfg.table("topic_sentiment")).select(*overview), spark.createDataFrame([
        (0, "cheap / broke / amp", ["cheap", "broke", "amp"], ["r1", "r2"], 3, 2, 1, 0, 2 / 3, 1 / 3, 0.0, 7 / 3,
         6.5 / 3),
        (1, "bright / tuner / lamp", ["bright", "tuner", "lamp"], ["r4", "r3"], 2, 0, 0, 2, 0.0, 0.0, 1.0, 5.0, 4.25),
    ], "topic_id int, topic_label string, top_terms array<string>, example_review_ids array<string>, reviews long, "
       f"{shares}, mean_rating double, mean_rating_pred double"))
    assertDataFrameEqual(
        spark.table(cfg.table("topic_sentiment_by_category")).select(
            "topic_id", "category", "reviews", "negative", "neutral", "positive", "mean_rating", "mean_rating_pred"),
        spark.createDataFrame([(0, "Musical Instruments", 2, 2, 0, 0, 1.5, 1.75), (0, "Home", 1, 0, 1, 0, 4.0, 3.0),
                               (1, "Musical Instruments", 1, 0, 0, 1, 5.0, 4.5), (1, "Home", 1, 0, 0, 1, None, 4.0)],
                              "topic_id int, category string, reviews long, negative long, neutral long, positive long, "
                              "mean_rating double, mean_rating_pred double"))
    assertDataFrameEqual(
        spark.table(cfg.table("topic_sentiment_by_product")).select("product_id", "product_title", "topic_id",
                                                                    "reviews", "negative", "neutral", "positive"),
        spark.createDataFrame([("p1", "Amp", 0, 2, 2, 0, 0), ("p2", "Tuner", 1, 1, 0, 0, 1), ("p3", "Lamp", 1, 1, 0, 0, 1),
                               ("p3", "Lamp", 0, 1, 0, 1, 0)],
                              "product_id string, product_title string, topic_id int, reviews long, negative long, "
                              "neutral long, positive long"))
    month = datetime.fromisoformat
    assertDataFrameEqual(
        spark.table(cfg.table("topic_sentiment_monthly")).select("month", "category", "topic_id", "reviews", "negative",
                                                                 "share_negative"),
        spark.createDataFrame([(month("2026-10-01").date(), "Musical Instruments", 0, 1, 1, 1.0),
                               (month("2026-11-01").date(), "Musical Instruments", 0, 1, 1, 1.0),
                               (month("2026-11-01").date(), "Musical Instruments", 1, 1, 0, 0.0),
                               (month("2026-11-01").date(), "Home", 1, 1, 0, 0.0)],
                              "month date, category string, topic_id int, reviews long, negative long, "
                              "share_negative double"))
    assertDataFrameEqual(
        spark.table(cfg.table("aspect_sentiment")).select("aspect", "category", "mentions", "negative", "neutral",
                                                          "positive", "mean_rating_pred"),
        spark.createDataFrame([("price", "all", 3, 2, 1, 0, 6.5 / 3), ("quality", "all", 2, 1, 0, 1, 3.0),
                               ("price", "Musical Instruments", 2, 2, 0, 0, 1.75), ("price", "Home", 1, 0, 1, 0, 3.0),
                               ("quality", "Musical Instruments", 2, 1, 0, 1, 3.0)],
                              "aspect string, category string, mentions long, negative long, neutral long, "
                              "positive long, mean_rating_pred double"))
    # Provenance on every row; each rebuild is one Delta commit; the charts are PNGs.
    for role in GOLD:
        got = spark.table(cfg.table(role)).select("sentiment_model", "topic_model", "scores_version",
                                                  "silver_version").distinct().collect()
        assert [tuple(r) for r in got] == [("m/1", None if role == "aspect_sentiment" else "j/2", 0, 0)], role
    before = {role: tables.table_version(DeltaTable.forName(spark, cfg.table(role))) for role in GOLD}
    aggregate(spark, cfg, sentiment, topics)
    assert {role: tables.table_version(DeltaTable.forName(spark, cfg.table(role))) for role in GOLD} == {
        role: v + 1 for role, v in before.items()}
    assert [p.read_bytes()[:4] for p in report.charts] == [b"\x89PNG"] * 2
    with pytest.raises(ValueError, match="has no scores of m/7: run ./spark-submit.sh score --model m/7 first"):
        aggregate(spark, cfg, ModelVersion("m", "7", "multitask"), topics)


def location(spark: SparkSession, table: str) -> str:
    row = spark.sql(f"DESCRIBE DETAIL {table}").first()
    assert row is not None
    return str(row["location"])


def test_killed_scoring_reruns_and_gold_answers_the_shipped_queries_in_a_new_process(
        spark: SparkSession, scored: tuple[Config, dict[str, ScoreReport]], train_silver: Config, train_home: Path,
        tmp_path: Path, t_multitask: TrainReport) -> None:
    """The gold tables of t-multitask x t-joint, and a scoring job SIGKILLed after the first of its three
    chunks (the re-run here scores the rest in one), in new
    ``spark-submit.sh`` processes. They have a metastore of their own (the tests' embedded one admits one
    process): the first one registers the test's Delta tables there by location."""
    cfg, _ = scored
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"reports": tmp_path})})
    aggregate(spark, cfg, registry.resolve(cfg, f"t-multitask/{t_multitask.version}"), registry.resolve(cfg, "t-joint/1"))
    kill = with_settings(train_silver, "score_kill")
    total = copy_silver(spark, train_silver, kill)
    tables.owned_table(spark, kill.table("scores"), SCORES_SCHEMA, "scores")
    register = [f"CREATE DATABASE IF NOT EXISTS {kill.database}"] + [
        f"CREATE TABLE IF NOT EXISTS {c.table(role)} USING delta LOCATION '{location(spark, c.table(role))}'"
        for c, roles in ((cfg, ("silver", "scores", *GOLD)), (kill, ("silver", "scores"))) for role in roles]
    script = tmp_path / "gold.sql"
    script.write_text(";\n".join(register) + ";\n" + "\n".join(q.read_text() for q in QUERIES))
    env = {**os.environ, "REVIEWLAKE_HOME": str(tmp_path / "home")}
    base = [str(REPO / "spark-submit.sh"), "--set", f"paths.mlflow={train_home / 'mlflow'}",
            "--set", "spark.conf={spark.ui.enabled: 'false', spark.sql.shuffle.partitions: '2'}"]
    done = subprocess.run([*base, "--set", f"database={cfg.database}", "sql", "-f", str(script)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    spark.catalog.setCurrentDatabase(cfg.database)
    try:
        for query in QUERIES:
            expected = spark.sql(query.read_text().rstrip().rstrip(";"))._show_string(100, 0)
            assert expected in done.stdout, (query.name, expected, done.stdout[-3000:])
        topics = spark.table("review_scores").where("model_name = 't-joint'").select("topic_id").distinct().count()
        assert spark.table("topic_sentiment").count() == topics > 1
    finally:
        spark.catalog.setCurrentDatabase("default")

    job = subprocess.Popen([*base, "--set", f"database={kill.database}", "--set", "score.chunk_rows=400", "score",
                            "--model", f"t-multitask/{t_multitask.version}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, start_new_session=True)
    seen = []
    assert job.stdout is not None
    for line in job.stdout:
        seen.append(line)
        if "chunk 1/" in line and "committed" in line:
            os.killpg(job.pid, signal.SIGKILL)
            break
    job.wait(timeout=60)
    assert job.returncode == -signal.SIGKILL, "".join(seen[-40:])
    committed = spark.table(kill.table("scores")).count()
    assert 0 < committed < total
    rerun = score_reviews(spark, kill, f"t-multitask/{t_multitask.version}")
    assert (rerun.scored, rerun.already) == (total - committed, committed)
    assert one_per_key(spark, kill, "t-multitask", t_multitask.version) == (total, total)
