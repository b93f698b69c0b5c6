"""Evaluation: figures worked out by hand on tiny arrays, one set per source, the confusion PNG, and
the idempotent ``model_metrics`` MERGE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from reviewlake.config import Config
from reviewlake.evaluate import Predictions, confusion_png, metrics, write_metrics

BINARY = ["negative", "positive"]
THREE = ["negative", "neutral", "positive"]
nan = float("nan")


def as_dict(rows: list[tuple[str, str, float]], source: str) -> dict[str, float]:
    return {m: v for s, m, v in rows if s == source}


def binary_predictions() -> Predictions:
    # Rows 1-4 labelled, 3 of them right (row 2 is a positive predicted negative); row 5 unlabelled
    # but predicted positive with certainty, so counting it would change every figure.
    return Predictions(
        source=np.array(["real"] * 5),
        y_true=np.array([1, 1, 0, 0, -1]),
        proba=np.array([[0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.55, 0.45], [0.0, 1.0]]),
        rating_true=np.array([5, 4, 1, nan, 2]),
        rating_pred=np.array([4.5, 4, 2, 3, 2]),
        aspects_true=np.array([[1, 0], [1, 1], [0, 0], [0, 1], [0, 0]]),
        aspects_prob=np.array([[0.9, 0.1], [0.4, 0.8], [0.2, 0.6], [0.1, 0.7], [0.1, 0.2]]),
    )


def test_binary_metrics_by_hand() -> None:
    got = as_dict(metrics(binary_predictions(), BINARY), "real")
    expected = {
        "n": 5, "n_sentiment": 4,
        "accuracy": 3 / 4,
        # negative: tp 2, fp 1 (row 2), fn 0; positive: tp 1, fp 0, fn 1
        "precision_negative": 2 / 3, "recall_negative": 1.0, "f1_negative": 0.8,
        "precision_positive": 1.0, "recall_positive": 0.5, "f1_positive": 2 / 3,
        "precision_macro": 5 / 6, "recall_macro": 0.75, "f1_macro": (0.8 + 2 / 3) / 2,
        # positives score 0.8, 0.4 against negatives 0.3, 0.45: 3 of 4 pairs ordered right
        "roc_auc": 0.75,
        # rated rows 1, 2, 3, 5 (row 5 has no sentiment label but a rating): errors 0.5, 0, 1, 0
        "n_rating": 4, "rating_mae": 0.375, "rating_rmse": 0.3125 ** 0.5,
        # truth 5, 4, 1, 2 (mean 3): SS_res 1.25, SS_tot 10
        "rating_r2": 0.875,
        # predicted [1,0] [0,1] [0,1] [0,1] [0,0]: aspect 0 tp 1 fn 1 -> 2/3; aspect 1 tp 2 fp 1 -> 0.8
        "aspects_f1_macro": (2 / 3 + 0.8) / 2,
        "aspects_hamming_loss": 2 / 10,
    }
    assert got.keys() == expected.keys()
    for metric, value in expected.items():
        assert got[metric] == pytest.approx(value), metric


def test_sources_are_evaluated_apart() -> None:
    # "real": 4 labelled rows, 3 right; "generated": 2 rows, both neutral, 1 right; "unlabelled": no label.
    pred = Predictions(
        source=np.array(["real", "generated", "real", "real", "generated", "real", "unlabelled"]),
        y_true=np.array([0, 1, 1, 2, 1, 2, -1]),
        proba=np.array([[0.5, 0.2, 0.3], [0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.2, 0.3, 0.5],
                        [0.7, 0.2, 0.1], [0.45, 0.35, 0.2], [0.3, 0.3, 0.4]]),
        rating_true=np.full(7, nan),
    )
    rows = metrics(pred, THREE)
    assert sorted({s for s, _, _ in rows}) == ["generated", "real", "unlabelled"]

    real = as_dict(rows, "real")
    assert real["n"] == 4 and real["accuracy"] == pytest.approx(3 / 4)
    # negative: tp 1 fp 1 -> P 1/2 R 1 F1 2/3; neutral: 1 1 1; positive: tp 1 fn 1 -> P 1 R 1/2 F1 2/3
    assert [real[f"f1_{c}"] for c in THREE] == pytest.approx([2 / 3, 1.0, 2 / 3])
    assert real["precision_macro"] == pytest.approx(5 / 6)
    assert real["recall_macro"] == pytest.approx(5 / 6)
    assert real["f1_macro"] == pytest.approx(7 / 9)
    # one-vs-rest AUC: negative 1 (0.5 above 0.1, 0.2, 0.45), neutral 1 (0.6 above 0.2, 0.3, 0.35),
    # positive 1/2 (0.5 and 0.2 against 0.3 and 0.3: 2 of 4 pairs)
    assert real["roc_auc"] == pytest.approx((1 + 1 + 0.5) / 3)

    generated = as_dict(rows, "generated")
    # Only neutral occurs: its figures alone make the macro; AUC needs two classes.
    assert generated == pytest.approx({
        "n": 2, "n_sentiment": 2, "accuracy": 0.5,
        "precision_neutral": 1.0, "recall_neutral": 0.5, "f1_neutral": 2 / 3,
        "precision_macro": 1.0, "recall_macro": 0.5, "f1_macro": 2 / 3,
    })
    assert as_dict(rows, "unlabelled") == {"n": 1, "n_sentiment": 0}


def test_undefined_figures_are_left_out() -> None:
    # One rated row (no R2), and aspect 1 neither present nor predicted (left out of the macro F1).
    pred = Predictions(
        source=np.array(["s", "s"]), y_true=np.array([0, -1]), proba=np.array([[0.9, 0.1], [0.5, 0.5]]),
        rating_true=np.array([2, nan]), rating_pred=np.array([3.5, 1]),
        aspects_true=np.array([[1, 0], [0, 0]]), aspects_prob=np.array([[0.7, 0.1], [0.6, 0.2]]),
    )
    got = as_dict(metrics(pred, BINARY), "s")
    assert "roc_auc" not in got and "rating_r2" not in got
    assert got["rating_mae"] == pytest.approx(1.5)
    # aspect 0: tp 1, fp 1 -> F1 2/3, the whole macro; one wrong cell of four
    assert got["aspects_f1_macro"] == pytest.approx(2 / 3)
    assert got["aspects_hamming_loss"] == pytest.approx(1 / 4)


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match="'y_true' has 1 rows but 'source' has 2"):
        Predictions(source=np.array(["a", "b"]), y_true=np.array([0]), proba=np.ones((2, 2)) / 2,
                    rating_true=np.full(2, nan))
    with pytest.raises(ValueError, match="must hold integers"):
        Predictions(source=np.array(["a"]), y_true=np.array([nan]), proba=np.ones((1, 2)) / 2,
                    rating_true=np.full(1, nan))
    ok = Predictions(source=np.array(["a"]), y_true=np.array([2]), proba=np.ones((1, 2)) / 2,
                     rating_true=np.full(1, nan))
    with pytest.raises(ValueError, match="3 class names"):
        metrics(ok, THREE)
    with pytest.raises(ValueError, match="holds class 2 but there are 2 classes"):
        metrics(ok, BINARY)


def test_confusion_png(tmp_path: Path) -> None:
    pred = binary_predictions()
    two = Predictions(source=np.array(["real", "real", "generated", "generated", "generated"]),
                      y_true=pred.y_true, proba=pred.proba, rating_true=pred.rating_true)
    out = confusion_png(two, BINARY, tmp_path / "plots" / "confusion.png", "linear test")
    assert out == tmp_path / "plots" / "confusion.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = imread(out).shape
    assert width > height  # the two sources side by side


def test_write_metrics_replaces_a_versions_figures(spark: SparkSession, cfg: Config) -> None:
    table = cfg.table("model_metrics")
    assert write_metrics(spark, cfg, "linear", "1", "run-a", {
        "test": [("real", "accuracy", 0.5), ("real", "f1_macro", 0.4), ("real", "roc_auc", 0.6)],
        "validation": [("real", "accuracy", 0.55)]}) == 4
    assert write_metrics(spark, cfg, "linear", "2", "run-b", {"test": [("real", "accuracy", 0.7)]}) == 1
    # Version 1's test split evaluated again: new values, roc_auc no longer given, a new source; its
    # validation figures, not given this time, stay.
    assert write_metrics(spark, cfg, "linear", "1", "run-c", {
        "test": [("real", "accuracy", 0.75), ("real", "f1_macro", 0.6), ("generated", "accuracy", 0.9)]}) == 3
    assertDataFrameEqual(
        spark.table(table).select("model", "version", "run_id", "split", "source", "metric", "value"),
        [("linear", "1", "run-c", "test", "real", "accuracy", 0.75),
         ("linear", "1", "run-c", "test", "real", "f1_macro", 0.6),
         ("linear", "1", "run-c", "test", "generated", "accuracy", 0.9),
         ("linear", "1", "run-a", "validation", "real", "accuracy", 0.55),
         ("linear", "2", "run-b", "test", "real", "accuracy", 0.7)],
    )
    # The re-evaluation stamped its rows afresh: later than version 2's, written in between.
    first = spark.table(table).where("split = 'test'").groupBy("version").agg(F.min("evaluated_at").alias("at")).collect()
    stamps = {r.version: r.at for r in first}
    assert stamps["1"] > stamps["2"]
    with pytest.raises(ValueError, match="appear more than once"):
        write_metrics(spark, cfg, "linear", "1", "run-d", {"test": [("real", "accuracy", 0.1), ("real", "accuracy", 0.2)]})
