"""The joint sentiment-topic model: DEC's pieces, topic terms and quality, and training it end to end on
Spark with the real MiniLM embeddings (stored once in Delta), registered and scored through ``predict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest
import torch
from pyspark.sql import SparkSession

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.families.joint_topic import JointTopicModel, joint_loss, soft_assignment, target_distribution
from reviewlake.topics import describe_topics, diversity, npmi
from reviewlake.training.stage import TrainReport
from tests.conftest import JOINT, train_config

@pytest.fixture(scope="module")
def joint(t_joint: tuple[Config, TrainReport]) -> tuple[Config, TrainReport]:
    """joint-topic v1 (t-joint; see conftest)."""
    return t_joint


def test_joint_topic_trains_registers_and_describes_its_topics(spark: SparkSession,
                                                               joint: tuple[Config, TrainReport]) -> None:
    cfg, report = joint
    assert (report.version, report.promoted) == ("1", True) and report.steps > 0
    assert "topic diversity" in report.summary()
    accuracy = {s: v for s, m, v in report.test_metrics if m == "accuracy"}
    assert accuracy["amazon-tsv"] > 0.75
    topics = spark.table(cfg.table("model_topics")).where(f"model = 't-joint' AND version = '{report.version}'").orderBy(
        "topic_id").collect()
    assert [t["topic_id"] for t in topics] == [0, 1, 2, 3]
    assert all(len(t["terms"]) == 8 and t["label"].count(" / ") == 2 and len(t["examples"]) == 3 for t in topics)
    assert sum(t["reviews"] for t in topics) == report.rows["train"]
    found = {r["metric"]: r["value"] for r in spark.table(cfg.table("model_metrics")).where(
        "model = 't-joint' AND split = 'train' AND source = 'amazon-tsv'").collect()}
    assert found["topic_silhouette"] > 0.0  # the topics are clusters of the latent, not noise
    # One source: its coherence is the mean of the topics' own.
    assert found["topic_npmi"] == pytest.approx(np.mean([t["npmi"] for t in topics if t["npmi"] is not None]))
    # The generator plants product categories: the topics recover them well above chance (NMI ~ 0.01).
    assert found["topic_nmi_category"] > 0.15, found


def test_joint_topic_trains_through_horovod(spark: SparkSession, spark_home: Path, train_home: Path,
                                           joint: tuple[Config, TrainReport]) -> None:
    """The same train function under horovod.spark.run: 2 ranks, each reading its own shard through
    Petastorm; it reuses the embeddings t-joint stored."""
    from reviewlake.families import train
    from reviewlake.training.stage import TrainRequest

    cfg = train_config(spark_home, train_home, *JOINT, "train.joint_topic.pretrain_epochs=2",
                       "train.joint_topic.epochs=2")
    report = train(spark, cfg, TrainRequest(model="joint-topic", backend="horovod", num_proc=2, local_mode=False,
                                            use_gpu=False, name="t-joint-horovod"))
    assert report.version == "1" and report.steps > 0, report.summary()
    accuracy = {s: v for s, m, v in report.test_metrics if m == "accuracy"}
    assert accuracy["amazon-tsv"] > 0.7, report.summary()
    topics = spark.table(cfg.table("model_topics")).where("model = 't-joint-horovod'").collect()
    assert sorted(t["topic_id"] for t in topics) == [0, 1, 2, 3]
    assert sum(t["reviews"] for t in topics) == report.rows["train"]
    out = registry.load(cfg, "t-joint-horovod@champion").predict(pd.DataFrame({"text": ["it broke in a day"]}))
    assert out["status"][0] == "ok" and 0 <= int(out["topic_id"][0]) < 4


def test_embeddings_are_stored_once_per_review_and_encoder(spark: SparkSession,
                                                           joint: tuple[Config, TrainReport]) -> None:
    from reviewlake.embeddings import embed_silver
    from reviewlake.training.data import silver_at_version

    cfg, _ = joint
    table = spark.table(cfg.table("embeddings"))
    silver, version = silver_at_version(spark, cfg)
    assert table.count() == silver.count() == table.select("review_id").distinct().count()
    settings = cfg.train.joint_topic
    again = embed_silver(spark, cfg, settings.encoder, settings.max_length, 64, silver, version)
    assert (again.embedded, again.reused) == (0, silver.count())


def test_embedding_runs_the_encoder_once_per_review(spark: SparkSession, joint: tuple[Config, TrainReport],
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embeddings are persisted for their MERGE, which reads its source twice: the encoder runs once per
    review (it ran twice while the rows carried current_timestamp(), which kept the MERGE off the cache)."""
    from pyspark.sql import functions as F

    from reviewlake import embeddings
    from reviewlake.training.data import silver_at_version

    cfg, _ = joint
    cfg = cfg.model_copy(update={"tables": cfg.tables.model_copy(update={"embeddings": "embeddings_once"})})
    batches = tmp_path / "batches"

    def counting(encoder: str, max_length: int, batch_size: int, threads: int) -> Any:
        def embed(texts: Iterator[pd.Series]) -> Iterator[pd.Series]:
            for batch in texts:
                with open(batches, "a") as out:
                    out.write(f"{len(batch)}\n")
                yield pd.Series([[0.0] * 4] * len(batch))

        return F.pandas_udf(embed, "array<float>")  # type: ignore[call-overload]

    monkeypatch.setattr(embeddings, "embedding_udf", counting)
    silver, version = silver_at_version(spark, cfg)
    report = embeddings.embed_silver(spark, cfg, "counting", 16, 64, silver, version)
    assert report.embedded == silver.count() == sum(int(n) for n in batches.read_text().split())


def test_joint_topic_predicts_sentiment_and_topic_as_the_model_does(joint: tuple[Config, TrainReport]) -> None:
    from reviewlake.embeddings import sentence_embeddings
    from reviewlake.families.joint_topic import joint_scores
    from reviewlake.predict import as_json

    cfg, _ = joint
    model = registry.load(cfg, "t-joint@champion")
    texts = pd.Series(["the strings went out of tune after a day, awful", "", "bright screen and the battery lasts"])
    out = model.predict(pd.DataFrame({"text": texts}))
    assert list(out["status"]) == ["ok", "empty_text", "ok"]
    predictor = model.unwrap_python_model().predictor
    direct = joint_scores(predictor.model, sentence_embeddings(predictor.encoder, predictor.tokenizer,
                                                               [texts[0], texts[2]], 128))
    assert list(out["topic_id"].iloc[[0, 2]]) == list(direct["topic"])
    assert np.allclose(out["topic_prob"].iloc[[0, 2]].astype(float), direct["topic_prob"], atol=1e-6)
    assert np.allclose(out["sentiment_prob"].iloc[[0, 2]].astype(float), direct["proba"].max(1), atol=1e-6)
    answer = as_json(out.iloc[0])
    assert set(answer["topic"]) == {"id", "probability", "label"} and answer["topic"]["label"].count(" / ") == 2


def test_write_topics_replaces_a_versions_topics_only(spark: SparkSession, cfg: Config) -> None:
    from reviewlake.topics import Topic, write_topics

    def topic(i: int, label: str) -> Topic:
        return Topic(i, label, label.split(" / "), [0.3, 0.2, 0.1], ["r1"], 10 + i,
                     {"negative": 0.25, "positive": 0.75}, 0.1)

    write_topics(spark, cfg, "m", "1", [topic(0, "a / b / c"), topic(1, "d / e / f")])
    write_topics(spark, cfg, "m", "2", [topic(0, "g / h / i")])
    write_topics(spark, cfg, "m", "1", [topic(0, "x / y / z")])
    got = sorted((r["version"], r["topic_id"], r["label"], r["reviews"]) for r in spark.table(
        cfg.table("model_topics")).collect())
    assert got == [("1", 0, "x / y / z", 10), ("2", 0, "g / h / i", 10)]
