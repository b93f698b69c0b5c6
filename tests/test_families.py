"""The model families as one structure: dispatch over ``FAMILIES`` (a family defined here trains, predicts
and scores through the same stages), the input contract a version carries (cleaning rules), versions
registered before the move, and the rules every family shares (when a text has text, macro-F1).

This module has its own registry (``paths.mlflow`` under its own folder) and registered names."""

from __future__ import annotations

import importlib
import pickle
import time
from pathlib import Path
from typing import Any, Iterator

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.pyfunc import PythonModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.families import FAMILIES, Family, train
from reviewlake.families.base import SENTIMENT_NAMES, sentiment_frame
from reviewlake.metrics import NO_PREDICTION, macro_f1_score
from reviewlake.predict import clean_texts, predict_texts
from reviewlake.text import has_text, has_text_column
from reviewlake.training.stage import TrainRequest
from tests.conftest import FIXTURES, load_job, train_config

BEFORE = FIXTURES / "models" / "before-families"
# Texts with and without text by the ingest's rule: white space, separators, control and format
# characters (NUL, zero-width space, byte-order mark, word joiner, line and paragraph separators) only,
# or anything else.
EDGE_TEXTS = ["", " ", "\t\n\r\x0b\x0c", "\u0000\u0000", "\u200b", "\ufeff", "\u2060", "\u00a0", "\u3000",
              "\u2028\u2029", "\u0085", "\u001f\u007f", "a", " a ", "\u0000x", "é", "日本", "🙂", "1", ".", "-",
              "\u200bok\u200b", "\ue000", "\u0301"]


@pytest.fixture(scope="module")
def own(spark: SparkSession, spark_home: Path, train_silver: Config,
        tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The training tests' silver, with this module's own registry and checkpoints."""
    home = tmp_path_factory.mktemp("families")
    return train_silver.model_copy(update={"paths": train_silver.paths.model_copy(update={
        "mlflow": home / "mlflow", "checkpoints": home / "checkpoints"})})


def request(model: str, name: str) -> TrainRequest:
    return TrainRequest(model=model, backend="torch-distributor", num_proc=2, local_mode=False, use_gpu=False,
                        name=name)


# ---------------------------------------------------------------------------------------------------
# The shared rules


def test_has_text_in_python_is_the_ingest_rule_in_spark(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(i, t) for i, t in enumerate(EDGE_TEXTS)] + [(len(EDGE_TEXTS), None)],
                                  "i int, text string")
    in_spark = {r["i"]: r["ok"] for r in frame.select("i", has_text_column(F.col("text")).alias("ok")).collect()}
    in_python = {i: has_text(t) for i, t in enumerate([*EDGE_TEXTS, None])}
    assert in_python == in_spark
    expected = {"a", " a ", "\u0000x", "é", "日本", "🙂", "1", ".", "-", "\u200bok\u200b", "\u0301"}
    assert {t for i, t in enumerate(EDGE_TEXTS) if in_python[i]} == expected


def test_a_text_of_control_characters_gets_empty_text_not_a_score() -> None:
    texts = pd.Series(["\u0000\u0000", "\u200b \ufeff", "fine", None])
    called: list[list[str]] = []

    def score(batch: list[str]) -> dict[str, np.ndarray]:
        called.append(batch)
        return {"proba": np.array([[0.2, 0.8]] * len(batch))}

    out, ok, _ = sentiment_frame(texts, 2, score)
    assert out["status"].tolist() == ["empty_text", "empty_text", "ok", "empty_text"]
    assert called == [["fine"]] and out["sentiment"].tolist() == [None, None, "positive", None]


def test_one_macro_f1_counts_a_missing_prediction_as_a_miss() -> None:
    from reviewlake.evaluate import Predictions, metrics

    y = np.array([0, 0, 1, 1])
    # Class 0: precision 1/2, recall 1/2; class 1: precision 1, recall 1/2 -> (0.5 + 2/3) / 2. Clipping the
    # missing prediction to class 0 (as selection once did) would give (0.8 + 2/3) / 2.
    assert macro_f1_score(y, np.array([0, NO_PREDICTION, 1, 0]), 2) == pytest.approx((0.5 + 2 / 3) / 2)
    # Over the classes present in the truth: a class nobody has and nobody predicts is not averaged in.
    assert macro_f1_score(y, np.array([0, 0, 1, 1]), 3) == 1.0
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    figures = {m: v for _, m, v in metrics(Predictions(np.array(["s"] * 4), y, proba, np.full(4, np.nan)),
                                           SENTIMENT_NAMES[2])}
    assert figures["f1_macro"] == pytest.approx(macro_f1_score(y, proba.argmax(1), 2))


def test_the_service_csv_escapes_formulas_and_predict_keeps_the_data() -> None:
    from reviewlake.serve import spreadsheet_safe

    frame = pd.DataFrame({"text": ["=HYPERLINK(\"x\")", "+1", "-2 stars", "@SUM(A1)", "\tx", "fine", "a=b"],
                          "sentiment_prob": [0.5] * 7})
    safe = spreadsheet_safe(frame)
    assert safe["text"].tolist() == ["'=HYPERLINK(\"x\")", "'+1", "'-2 stars", "'@SUM(A1)", "'\tx", "fine", "a=b"]
    assert safe["sentiment_prob"].tolist() == [0.5] * 7 and frame["text"][0] == "=HYPERLINK(\"x\")"


# ---------------------------------------------------------------------------------------------------
# The structure


def test_every_family_is_one_module_and_declares_what_the_stages_need() -> None:
    assert set(FAMILIES) == {"linear", "multitask", "multitask-int8", "multitask-bitlinear", "joint-topic",
                             "bilstm"}
    for model_type, declared in FAMILIES.items():
        module = declared.train.__module__
        assert module.startswith("reviewlake.families."), (model_type, module)
        assert declared in importlib.import_module(module).FAMILIES
        assert set(declared.columns) >= {"status", "sentiment", "sentiment_prob"}
        assert (declared.launcher is None) == (model_type not in ("linear", "multitask-int8"))
    assert [t for t, f in FAMILIES.items() if f.spark_scores is not None] == ["linear"]


def test_loading_a_model_imports_no_training_code(tmp_path: Path) -> None:
    """A fresh interpreter that loads every family's inference code (what unpickling a pyfunc imports)
    imports nothing from ``reviewlake.training`` but the names the old pyfunc paths keep."""
    import subprocess
    import sys

    from tests.conftest import REPO

    probe = ("import sys; import reviewlake.families.multitask, reviewlake.families.joint_topic, "
             "reviewlake.families.bilstm, reviewlake.families.linear, reviewlake.predict; "
             "print(sorted(m for m in sys.modules if m.startswith('reviewlake.training')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "lib"), "PATH": "/usr/bin:/bin"}).stdout
    assert out.strip() == "[]"


class KeywordModel(PythonModel):
    """The tiny test family's model: positive when a text names one of its words."""

    def __init__(self, words: list[str]) -> None:
        self.words = words

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        def score(texts: list[str]) -> dict[str, np.ndarray]:
            hit = np.array([any(w in t for w in self.words) for t in texts], dtype=float)
            return {"proba": np.stack([1 - 0.9 * hit - 0.05, 0.9 * hit + 0.05], 1)}

        return sentiment_frame(model_input["text"], 2, score)[0]


def keyword_scores(wrapper: Any, rows: DataFrame) -> DataFrame:
    hit = F.lit(False)
    for w in wrapper.words:
        hit = hit | F.col("text").contains(w)
    ok = has_text_column(F.col("text"))
    none = F.lit(None)
    return rows.select("review_id", "text_hash", "too_long", F.when(ok, "ok").otherwise("empty_text").alias("status"),
                       F.when(ok, F.when(hit, "positive").otherwise("negative")).alias("sentiment"),
                       F.when(ok, F.lit(0.95)).alias("sentiment_prob"),
                       none.cast("double").alias("rating_pred"), F.lit("").alias("aspects"),
                       F.lit("{}").alias("aspect_probs"), none.cast("double").alias("topic_id"),
                       none.cast("double").alias("topic_prob"), none.cast("string").alias("topic_label"))


def train_keywords(spark: SparkSession, cfg: Config, req: TrainRequest) -> Any:
    """The tiny family's train stage: the words of positive training reviews that no negative one has."""
    from reviewlake.evaluate import Predictions, metrics
    from reviewlake.training import stage
    from reviewlake.training.data import silver_at_version

    silver, version = silver_at_version(spark, cfg)
    rows = silver.select("split", "text_clean", F.col(cfg.train.label).alias("y")).where("y IS NOT NULL").toPandas()
    train_rows = rows[rows["split"] == "train"]
    words = [w for w in ("great", "love", "excellent", "perfect") if
             train_rows[train_rows["y"] == 1]["text_clean"].str.contains(w).any()]
    model = KeywordModel(words)
    validation = rows[rows["split"] == "validation"]
    got = model.predict(None, pd.DataFrame({"text": validation["text_clean"]}))
    p = np.where(got["sentiment"] == "positive", got["sentiment_prob"], 1 - got["sentiment_prob"]).astype(float)
    predicted = Predictions(np.array(["all"] * len(validation)), validation["y"].to_numpy().astype(int),
                            np.stack([1 - p, p], 1), np.full(len(validation), np.nan))
    figures = {"validation": metrics(predicted, SENTIMENT_NAMES[2])}
    run_id = stage.new_run_id()
    record = stage.RunRecord(params={"words": ",".join(words)}, tags={"silver_version": str(version)},
                             figures=figures, val_f1=stage.validation_f1(predicted), val_hash="keywords",
                             python_model=model, artifacts={}, requirements=["pandas"],
                             metadata={"cleaning": cfg.preprocess.cleaning.model_dump()}, classes=SENTIMENT_NAMES[2])
    registered = stage.register_run(spark, cfg, req, run_id, cfg.paths.checkpoints / run_id, record, None)
    return stage.report(req, run_id, registered, version, {"train": len(train_rows)}, record.val_f1, [], 0.0)


@pytest.fixture
def keywords() -> Iterator[Family]:
    declared = Family("keywords", train_keywords, launcher="pandas", spark_scores=keyword_scores)
    FAMILIES.register(declared)
    try:
        yield declared
    finally:
        FAMILIES.unregister("keywords")


def test_a_new_family_trains_predicts_and_scores_through_the_shared_stages(
        spark: SparkSession, own: Config, keywords: Family) -> None:
    from reviewlake.pipeline import PipelineRequest, check_request
    from reviewlake.score import score_reviews

    job = load_job("train")
    assert job.main(["--set", f"paths.mlflow={own.paths.mlflow}", "--set", f"database={own.database}",
                     "--set", f"paths.warehouse={own.paths.warehouse}", "--set", f"paths.metastore={own.paths.metastore}",
                     "--set", f"paths.checkpoints={own.paths.checkpoints}",
                     "--model", "keywords", "--name", "fam-keywords"]) == 0
    version = registry.find_version(own, "fam-keywords@champion")
    assert version.tags["model_type"] == "keywords"
    model = registry.load(own, "fam-keywords@champion")
    got = predict_texts(spark, own, model, pd.Series(["GREAT fit, I love it", "it broke", "\u200b"]))
    assert got["sentiment"].tolist() == ["positive", "negative", None]
    assert got["status"].tolist() == ["ok", "ok", "empty_text"]
    report = score_reviews(spark, own, "fam-keywords@champion")
    silver_rows = spark.table(own.table("silver")).count()
    assert report.scored == silver_rows and report.model_type == "keywords"
    check_request(own, PipelineRequest(models=("keywords",)))
    with pytest.raises(Exception, match="trains with pandas, through no backend"):
        check_request(own, PipelineRequest(models=("keywords:horovod",)))


# ---------------------------------------------------------------------------------------------------
# The input contract


def test_a_version_predicts_and_scores_with_the_cleaning_it_was_trained_with(spark: SparkSession,
                                                                             own: Config) -> None:
    """Train the linear model, then change the cleaning config: the version's predictions (``predict``)
    and batch scores (``score``) stay what they were, and cleaning by the new config would change them."""
    from reviewlake.score import score_reviews

    small = own.model_copy(update={"train": own.train.model_copy(update={"linear": own.train.linear.model_copy(
        update={"reg_params": [0.01], "num_features": 4096})})})
    report = train(spark, small, request("linear", "fam-linear"))
    texts = pd.Series(["GREAT value!!! Love it", "Don't buy: it's junk, broke after 2 days",
                       "<b>It's perfect</b>, don't hesitate &amp; 5 stars"])
    model = registry.load(own, f"fam-linear/{report.version}")
    before = predict_texts(spark, own, model, texts)
    changed = own.model_copy(update={"preprocess": own.preprocess.model_copy(update={
        "cleaning": own.preprocess.cleaning.model_copy(update={"lowercase": False, "strip_non_alpha": True})})})
    after = predict_texts(spark, changed, registry.load(changed, f"fam-linear/{report.version}"), texts)
    pd.testing.assert_frame_equal(before, after)
    by_new_rules = model.predict(pd.DataFrame({"text": clean_texts(spark, changed.preprocess.cleaning, texts)}))
    assert not np.allclose(before["sentiment_prob"], by_new_rules["sentiment_prob"])  # the test can fail

    first = score_reviews(spark, own, f"fam-linear/{report.version}", full=True)
    scores = {r["review_id"]: r["sentiment_prob"] for r in spark.table(own.table("scores")).where(
        F.col("model_name") == "fam-linear").collect()}
    again = score_reviews(spark, changed, f"fam-linear/{report.version}", full=True)
    rescored = {r["review_id"]: r["sentiment_prob"] for r in spark.table(own.table("scores")).where(
        F.col("model_name") == "fam-linear").collect()}
    assert first.scored == again.scored == len(scores) and rescored == scores


def register_folder(cfg: Config, folder: Path, name: str, model_type: str) -> str:
    """Register a saved MLflow model folder as a new version of ``name``; its reference."""
    registry.configure(cfg)
    with mlflow.start_run(run_name=f"{name} fixture") as run:
        mlflow.log_artifacts(str(folder), "model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name, tags={"model_type": model_type}).version
    return f"{name}/{version}"


@pytest.mark.parametrize("folder, old_class", [("multitask", b"reviewlake.predict"), ("bilstm", b"reviewlake.predict"),
                                                ("linear", b"reviewlake.training.linear")])
def test_versions_registered_before_the_move_still_predict(spark: SparkSession, own: Config, folder: str,
                                                           old_class: bytes) -> None:
    pickled = (BEFORE / folder / "python_model.pkl").read_bytes()
    assert old_class in pickled  # saved by the library as it was, naming the class where it lived then
    reference = register_folder(own, BEFORE / folder, f"fam-before-{folder}-{time.time_ns()}", folder)
    model = registry.load(own, reference)
    texts = pd.Series(["great product love it", "bad it broke", "\u0000"])
    got = predict_texts(spark, own, model, texts)
    assert got["status"].tolist() == ["ok", "ok", "empty_text"]
    assert set(got.columns) >= {"sentiment", "sentiment_prob", "rating_pred", "aspects", "aspect_probs"}
    if folder == "linear":  # its pipeline was fitted on exactly these words
        assert got["sentiment"].tolist()[:2] == ["positive", "negative"]
    else:  # the same answer as the family's predictor on the saved folder
        python_model = model.unwrap_python_model()
        assert type(python_model).__module__ == f"reviewlake.families.{folder}"
        direct = python_model.predictor_class(Path(python_model.path)).predict_frame(
            clean_texts(spark, own.preprocess.cleaning, texts))
        pd.testing.assert_frame_equal(got, direct)
    assert pickle.loads(pickled).__class__.__module__.startswith("reviewlake.families.")
