"""The MLlib linear baseline on small silver-like frames of clearly worded reviews: it separates them,
picks a strength from the grid by validation macro-F1, and predicts probabilities that sum to 1."""

from __future__ import annotations

import random

import pytest
from pyspark.ml.classification import LogisticRegressionModel
from pyspark.ml.feature import HashingTF, NGram
from pyspark.sql import DataFrame, SparkSession

from reviewlake.config import LinearSettings
from reviewlake.families.linear import build_pipeline, predict_linear, train_linear

PHRASES = {
    0: ["terrible", "broke after a week", "waste of money", "very disappointed", "do not buy", "awful"],
    1: ["okay i guess", "average at best", "it is fine", "nothing special", "does the job, mostly"],
    2: ["excellent", "works perfectly", "highly recommend", "love it", "great value", "fantastic"],
}
PRODUCTS = ["this blender", "the headphones", "my new kettle", "the phone case", "this lamp", "the charger"]
FILLER = ["bought it last month.", "came in a box.", "my sister has one too.", "used it every day.", ""]
SETTINGS = LinearSettings(ngram=2, num_features=4096, min_doc_freq=1, reg_params=[0.01, 1.0], max_iter=30)


def silver_like(spark: SparkSession, classes: int, rows: int, seed: int) -> DataFrame:
    """Rows of review_id, source, text_clean and both labels; every 20th row has no label."""
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        three = rng.choice(range(3) if classes == 3 else (0, 2))
        text = f"{rng.choice(PRODUCTS)} - {rng.choice(PHRASES[three])}. {rng.choice(FILLER)}"
        binary = None if three == 1 else three // 2
        if i % 20 == 0:
            binary = three = None  # type: ignore[assignment]
        records.append((f"r{seed}-{i}", "generated", text.strip(), binary, three))
    return spark.createDataFrame(
        records, "review_id string, source string, text_clean string, sentiment_binary int, sentiment_3 int")


def test_pipeline_stages_follow_the_settings(spark: SparkSession) -> None:
    stages = build_pipeline(SETTINGS.model_copy(update={"ngram": 3}), "sentiment_3", 0.5).getStages()
    assert [s.getN() for s in stages if isinstance(s, NGram)] == [2, 3]
    assert [s.getNumFeatures() for s in stages if isinstance(s, HashingTF)] == [4096] * 3
    regression = stages[-1]
    assert (regression.getRegParam(), regression.getLabelCol(), regression.getMaxIter()) == (0.5, "sentiment_3", 30)


def test_binary_model_separates_clear_reviews(spark: SparkSession) -> None:
    train = silver_like(spark, 2, 300, seed=1)
    validation = silver_like(spark, 2, 120, seed=2)
    model, scores = train_linear(train, validation, SETTINGS, "sentiment_binary")

    assert set(scores) == {0.01, 1.0}
    assert max(scores.values()) > 0.9
    chosen = model.stages[-1]
    assert isinstance(chosen, LogisticRegressionModel)
    assert chosen.getRegParam() == max(scores, key=scores.__getitem__)

    scored = predict_linear(model, validation).collect()
    assert len(scored) == 120
    assert list(scored[0].asDict()) == ["review_id", "source", "text_clean", "sentiment_binary", "sentiment_3",
                                        "proba", "pred"]
    for row in scored:
        assert len(row.proba) == 2 and sum(row.proba) == pytest.approx(1.0)
        assert row.pred == max(range(2), key=row.proba.__getitem__)
    labelled = [r for r in scored if r.sentiment_binary is not None]
    assert sum(r.pred == r.sentiment_binary for r in labelled) / len(labelled) > 0.9


def test_three_classes(spark: SparkSession) -> None:
    train = silver_like(spark, 3, 300, seed=3)
    validation = silver_like(spark, 3, 120, seed=4)
    model, scores = train_linear(train, validation, SETTINGS.model_copy(update={"reg_params": [0.01]}),
                                 "sentiment_3")
    assert list(scores) == [0.01] and scores[0.01] > 0.9
    scored = predict_linear(model, validation).collect()
    assert {len(r.proba) for r in scored} == {3}
    assert {r.pred for r in scored} == {0, 1, 2}
    assert all(sum(r.proba) == pytest.approx(1.0) for r in scored)


def test_missing_columns_are_named(spark: SparkSession) -> None:
    frame = silver_like(spark, 2, 5, seed=5).drop("sentiment_3")
    with pytest.raises(ValueError, match=r"the validation frame lacks column\(s\) \['sentiment_3'\]"):
        train_linear(silver_like(spark, 3, 5, seed=6), frame, SETTINGS, "sentiment_3")
