"""The joint sentiment-topic model: DEC's pieces, topic terms and quality, and training it end to end on
Spark with the real MiniLM embeddings (stored once in Delta), registered and scored through ``predict``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pyspark.sql import SparkSession

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.models.joint_topic import JointTopicModel, joint_loss, soft_assignment, target_distribution
from reviewlake.topics import describe_topics, diversity, npmi
from reviewlake.training.stage import TrainReport, TrainRequest, train
from tests.conftest import train_config

JOINT = ["train.joint_topic.batch_size=64", "train.joint_topic.pretrain_epochs=3", "train.joint_topic.epochs=4",
         "train.joint_topic.target_every=5", "train.joint_topic.top_terms=8"]


def test_soft_assignment_and_target_distribution() -> None:
    z = torch.tensor([[0.0, 0.0], [4.0, 4.0], [2.0, 2.0]])
    centroids = torch.tensor([[0.0, 0.0], [4.0, 4.0]])
    q = soft_assignment(z, centroids, alpha=1.0)
    assert torch.allclose(q.sum(1), torch.ones(3))
    # Student-t with alpha 1: 1 / (1 + d^2), normalised: d^2 = 0 and 32 for the first row.
    assert torch.allclose(q[0], torch.tensor([1.0, 1 / 33]) / (1 + 1 / 33))
    assert torch.allclose(q[2], torch.tensor([0.5, 0.5]))
    p = target_distribution(q, q.sum(0))
    assert torch.allclose(p.sum(1), torch.ones(3))
    assert p[0, 0] > q[0, 0] and p[1, 1] > q[1, 1]  # confident rows sharpen


def test_joint_loss_masks_missing_labels_and_keeps_every_parameter_in_the_graph() -> None:
    torch.manual_seed(0)
    model = JointTopicModel(dim=8, hidden=16, latent=3, topics=2, num_classes=2)
    x = torch.randn(4, 8)
    out = model(x)
    labelled = torch.tensor([0, 1, -1, -1])
    loss, parts = joint_loss(x, out, out[2].detach(), labelled, gamma=0.0, sentiment_weight=1.0)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    # Unlabelled rows add nothing: the sentiment term is the cross entropy of the labelled rows.
    expected = torch.nn.functional.cross_entropy(out[3][:2], torch.tensor([0, 1]))
    assert parts["loss_sentiment"] == pytest.approx(expected.item(), rel=1e-5)


def test_npmi_and_diversity_on_hand_made_documents() -> None:
    docs = [{"battery", "charge"}, {"battery", "charge"}, {"strings", "tune"}, {"strings", "tune", "battery"}]
    together, apart = npmi(docs, [["battery", "charge"], ["charge", "tune"]])
    # battery & charge: p = 3/4, 2/4, joint 2/4 -> log((1/2) / (3/8)) / -log(1/2)
    assert together == pytest.approx(np.log((1 / 2) / (3 / 8)) / np.log(2))
    assert apart == -1.0  # never in one review
    assert diversity([["a", "b"], ["b", "c"]]) == 0.75


def test_topic_terms_set_topics_apart(spark: SparkSession) -> None:
    texts = ["guitar strings tune fret", "guitar strings sound", "battery charge phone", "phone battery screen"]
    assigned = spark.createDataFrame(pd.DataFrame({
        "review_id": ["a", "b", "c", "d"], "source": "x", "text_clean": texts, "sentiment": [1, 0, 1, -1],
        "topic": [0, 0, 1, 1], "topic_prob": [0.9, 0.8, 0.7, 0.95]}))
    topics = describe_topics(assigned, top_terms=3, examples=1, class_names=["negative", "positive"])
    assert [t.topic_id for t in topics] == [0, 1] and [t.reviews for t in topics] == [2, 2]
    assert topics[0].terms[:2] == ["guitar", "strings"] and topics[1].terms[:2] == ["battery", "phone"]
    assert topics[0].label == "guitar / strings / fret" and topics[1].examples == ["d"]
    assert topics[0].shares == {"negative": 0.5, "positive": 0.5} and topics[1].shares == {"negative": 0.0,
                                                                                          "positive": 1.0}


@pytest.fixture(scope="module")
def joint(spark: SparkSession, spark_home: Path, train_home: Path, train_silver: Config) -> tuple[Config, TrainReport]:
    """joint-topic v1 on the training tests' silver (generated Amazon TSV reviews, each with the product
    category the generator planted), real MiniLM embeddings, 2 TorchDistributor tasks."""
    cfg = train_config(spark_home, train_home, *JOINT)
    return cfg, train(spark, cfg, TrainRequest(model="joint-topic", backend="torch-distributor", num_proc=2,
                                               local_mode=False, use_gpu=False, name="t-joint"))


def test_joint_topic_trains_registers_and_describes_its_topics(spark: SparkSession,
                                                               joint: tuple[Config, TrainReport]) -> None:
    cfg, report = joint
    assert (report.version, report.promoted) == ("1", True) and report.steps > 0
    assert "topic diversity" in report.summary()
    accuracy = {s: v for s, m, v in report.test_metrics if m == "accuracy"}
    assert accuracy["amazon-tsv"] > 0.75
    topics = spark.table(cfg.table("model_topics")).where("model = 't-joint' AND version = '1'").orderBy(
        "topic_id").collect()
    assert [t["topic_id"] for t in topics] == [0, 1, 2, 3]
    assert all(len(t["terms"]) == 8 and t["label"].count(" / ") == 2 and len(t["examples"]) == 3 for t in topics)
    assert sum(t["reviews"] for t in topics) == report.rows["train"]
    found = {r["metric"]: r["value"] for r in spark.table(cfg.table("model_metrics")).where(
        "model = 't-joint' AND split = 'train' AND source = 'amazon-tsv'").collect()}
    assert -1.0 <= found["topic_silhouette"] <= 1.0 and -1.0 <= found["topic_npmi"] <= 1.0
    # The generator plants product categories: the topics recover them well above chance (NMI ~ 0.01).
    assert found["topic_nmi_category"] > 0.15, found


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


def test_joint_topic_predicts_sentiment_and_topic_as_the_model_does(joint: tuple[Config, TrainReport]) -> None:
    from reviewlake.embeddings import sentence_embeddings
    from reviewlake.predict import as_json, joint_scores

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
