"""Predictions for texts from a table or the command line: ``predict --text`` and ``predict --input``.

Every model, whatever its family, is a registered ``mlflow.pyfunc`` (``models:/NAME@ALIAS``) that
takes a frame with a cleaned ``text`` column: this module cleans raw texts with the rules the model
version was trained with (its input contract, :func:`~reviewlake.families.base.cleaning_of`), scores
them, and shapes the answer (JSON for one text, a CSV with every input column plus the predictions).

The model code lives in ``reviewlake.families``; the names below that once held the pyfuncs
(``reviewlake.predict.MultitaskPyfunc`` ...) still resolve to them, so a version registered before the
move unpickles and predicts.
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from reviewlake.config import Cleaning
from reviewlake.families import columns_of
from reviewlake.families.base import SENTIMENT_NAMES, cleaning_of

log = logging.getLogger(__name__)

__all__ = ["SENTIMENT_NAMES", "as_json", "check_csv", "clean_texts", "predict_csv", "predict_texts"]

# Where the pyfuncs of versions registered before reviewlake.families lived (their pickles name them).
_MOVED = {"MultitaskPyfunc": "reviewlake.families.multitask", "JointTopicPyfunc": "reviewlake.families.joint_topic",
          "BilstmPyfunc": "reviewlake.families.bilstm", "MultitaskPredictor": "reviewlake.families.multitask",
          "JointTopicPredictor": "reviewlake.families.joint_topic", "BilstmPredictor": "reviewlake.families.bilstm"}
_CSV_TYPES = {"status": "string", "sentiment": "string", "sentiment_prob": "double", "rating_pred": "double",
              "aspects": "string", "topic_id": "int", "topic_prob": "double", "topic_label": "string"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def as_json(row: pd.Series) -> dict[str, Any]:
    """One row of :meth:`MultitaskPredictor.predict_frame` in the multi-task seed's JSON shape:
    sentiment, confidence, rating, aspects (those at or above 0.5) with their probabilities."""
    if row["status"] != "ok":
        return {"status": row["status"]}
    probs = json.loads(row["aspect_probs"])
    rating = None if pd.isna(row["rating_pred"]) else round(float(row["rating_pred"]), 2)
    out = {"sentiment": row["sentiment"], "confidence": round(float(row["sentiment_prob"]), 4), "rating": rating,
           "aspects": {a: p for a, p in probs.items() if p >= 0.5}, "aspect_probabilities": probs}
    if "topic_id" in row.index and not pd.isna(row["topic_id"]):
        out["topic"] = {"id": int(row["topic_id"]), "probability": round(float(row["topic_prob"]), 4),
                        "label": row["topic_label"]}
    return out


def clean_texts(spark: Any, rules: Cleaning, texts: pd.Series) -> pd.Series:
    """``texts`` cleaned by silver's Spark cleaning ``rules`` (a model version's: :func:`cleaning_of`),
    same index."""
    from reviewlake.preprocess import add_clean_text

    frame = spark.createDataFrame(pd.DataFrame({"_i": range(len(texts)), "text": texts.fillna("").astype(str)
                                                .tolist()}).assign(title=None), "_i long, text string, title string")
    rows = add_clean_text(frame, rules).select("_i", "text_clean").collect()
    cleaned = dict((r["_i"], r["text_clean"]) for r in rows)
    return pd.Series([cleaned[i] for i in range(len(texts))], index=texts.index)


def predict_texts(spark: Any, cfg: Any, model: Any, texts: pd.Series) -> pd.DataFrame:
    """Predictions of a loaded pyfunc ``model`` for raw ``texts``, cleaned by the rules it was trained with."""
    cleaned = clean_texts(spark, cleaning_of(model, cfg.preprocess.cleaning), texts)
    return model.predict(pd.DataFrame({"text": cleaned}, index=texts.index))


def check_csv(source: Path) -> None:
    """Fail in one line unless ``source`` is a CSV file with a ``text`` column."""
    if not source.is_file():
        raise FileNotFoundError(f"input file {source} does not exist")
    header = pd.read_csv(source, nrows=0, dtype=str).columns
    if "text" not in header:
        raise ValueError(f"{source}: no 'text' column (it has {list(header)})")


def predict_csv(spark: Any, cfg: Any, reference: str, model: Any, source: Path, target: Path,
                spark_above: int) -> int:
    """Score a CSV with a ``text`` column into ``target``: every input column plus the predictions.

    Files of up to ``spark_above`` rows are scored in this process with ``model`` (the loaded
    pyfunc of ``reference``); larger ones through Spark, the model loaded once per Python worker.
    """
    from reviewlake import registry

    check_csv(source)
    added = [c for c in columns_of(model) if c != "aspect_probs"]
    rows = sum(1 for _ in open(source, "rb")) - 1
    if rows <= spark_above:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
        out = predict_texts(spark, cfg, model, frame["text"])[added]
        pd.concat([frame, out], axis=1).to_csv(target, index=False)
        return len(frame)
    from pyspark.sql import functions as F

    from reviewlake.preprocess import add_clean_text

    df = spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(str(source))
    cleaned = add_clean_text(df.withColumn("title", F.lit(None).cast("string")),
                             cleaning_of(model, cfg.preprocess.cleaning))
    schema = ", ".join([f"`{c}` string" for c in df.columns] + [f"{c} {_CSV_TYPES[c]}" for c in added])
    uri = registry.tracking_uri(cfg)
    threads = cfg.score.torch_threads
    columns = list(df.columns)  # the closure below ships to executors: plain values only, no DataFrame

    def score(batches: Any) -> Any:
        from reviewlake.registry import worker_model

        scorer = worker_model(uri, reference, threads)  # once per Python worker, as batch scoring does
        for batch in batches:
            got = scorer.predict(pd.DataFrame({"text": batch["text_clean"].fillna("")}))
            yield pd.concat([batch[columns].reset_index(drop=True), got[added].reset_index(drop=True)],
                            axis=1)

    scored = cleaned.mapInPandas(score, schema)
    scored.coalesce(1).write.mode("overwrite").option("header", True).csv(str(target) + ".parts")
    part = next(Path(str(target) + ".parts").glob("part-*.csv"))
    part.replace(target)
    return rows
