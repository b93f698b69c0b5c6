"""The train stage of the MLlib baseline: fit natively in Spark, evaluate per source, register.

The registered model is an ``mlflow.pyfunc`` wrapper around the saved ``PipelineModel`` (it scores
through the active SparkSession), so ``predict`` and batch scoring load ``linear@champion`` exactly
as they load the torch models.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from reviewlake import registry
from reviewlake.config import Config
from reviewlake.training.data import select_rows, silver_at_version
from reviewlake.training.report import train_fingerprint

log = logging.getLogger(__name__)


class LinearPyfunc(PythonModel):
    """``mlflow.pyfunc`` face of a saved MLlib pipeline: a frame with a ``text`` column in."""

    def load_context(self, context: Any) -> None:
        from pyspark.ml import PipelineModel

        self.model = PipelineModel.load(context.artifacts["pipeline"])
        self.meta = json.loads(Path(context.artifacts["meta"]).read_text())

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from pyspark.sql import SparkSession

        from reviewlake.models.linear import predict_linear
        from reviewlake.predict import sentiment_frame

        if "text" not in model_input.columns:
            raise ValueError("the input needs a 'text' column")
        spark = SparkSession.getActiveSession()
        if spark is None:
            raise RuntimeError("the linear model scores through Spark: start a SparkSession first")

        def score(texts: list[str]) -> dict[str, np.ndarray]:
            frame = spark.createDataFrame(pd.DataFrame({"_i": np.arange(len(texts)), "text_clean": texts}))
            rows = {r["_i"]: r["proba"] for r in predict_linear(self.model, frame).select("_i", "proba").collect()}
            return {"proba": np.stack([np.asarray(rows[i]) for i in range(len(texts))])}

        return sentiment_frame(model_input["text"].fillna("").astype(str), self.meta["num_classes"], score)[0]


def _predictions(model: Any, frame: DataFrame, label: str) -> Any:
    from reviewlake.evaluate import Predictions
    from reviewlake.models.linear import predict_linear

    rows: pd.DataFrame = predict_linear(model, frame.where(F.col(label).isNotNull())).select(
        "source", F.col(label).alias("y"), "proba").toPandas()
    return Predictions(source=rows["source"].to_numpy(), y_true=rows["y"].to_numpy().astype(int),
                       proba=np.stack(rows["proba"].to_numpy()) if len(rows) else np.zeros((0, 2)),
                       rating_true=np.full(len(rows), np.nan))


def train_linear_stage(spark: SparkSession, cfg: Config, request: Any) -> Any:
    """Fit, evaluate and register the MLlib baseline for ``request`` (a :class:`TrainRequest`)."""
    import mlflow

    from reviewlake.evaluate import confusion_png, metrics, write_metrics
    from reviewlake.models.linear import train_linear
    from reviewlake.predict import SENTIMENT_NAMES
    from reviewlake.training.stage import TrainReport, _macro_f1_labels

    clock = time.perf_counter()
    label = cfg.train.label
    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_dir = cfg.paths.checkpoints / run_id
    silver, version = silver_at_version(spark, cfg)
    rows = select_rows(silver, cfg, request.max_rows or cfg.train.max_rows, request.sources or cfg.train.sources)
    splits = {s: rows.where(F.col("split") == s).cache() for s in ("train", "validation", "test")}
    counts = {s: {r["source"]: r["count"] for r in f.groupBy("source").count().collect()} for s, f in splits.items()}
    if not counts["train"]:
        raise ValueError(f"no training rows in {cfg.table('silver')} v{version}")
    spark.sparkContext.setJobDescription(f"train linear {run_id}")
    model, by_reg = train_linear(splits["train"], splits["validation"], cfg.train.linear, label)
    spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]
    num_classes = 2 if label == "sentiment_binary" else 3
    classes = SENTIMENT_NAMES[num_classes]
    predictions = {s: _predictions(model, splits[s], label) for s in ("validation", "test")}
    val_rows, test_rows = metrics(predictions["validation"], classes), metrics(predictions["test"], classes)
    val_f1 = _macro_f1_labels(predictions["validation"].y_true, predictions["validation"].proba.argmax(1))
    val_ids = sorted(r[0] for r in splits["validation"].select("review_id").collect())
    val_hash = hashlib.sha256("\n".join(val_ids).encode()).hexdigest()[:16]
    for frame in splits.values():
        frame.unpersist()

    pipeline_dir = run_dir / "model" / "pipeline"
    model.write().overwrite().save(str(pipeline_dir))
    meta_file = run_dir / "model" / "meta.json"
    meta_file.write_text(json.dumps({"model_type": "linear", "num_classes": num_classes, "label": label}))
    name = registry.model_name(cfg, "linear", request.name)
    client = registry.configure(cfg)
    with mlflow.start_run(run_name=f"linear {run_id}") as run:
        mlflow.log_params({"model_type": "linear", "silver_version": version, "label": label,
                           **{f"linear.{k}": v for k, v in cfg.train.linear.model_dump().items()}})
        for reg, f1 in by_reg.items():
            mlflow.log_metric("val_macro_f1_by_reg", f1, step=int(reg * 1000))
        registry.log_figures({"validation": val_rows, "test": test_rows})
        for split in ("validation", "test"):
            mlflow.log_artifact(str(confusion_png(predictions[split], classes, run_dir / "plots" / f"confusion_{split}.png",
                                                  f"{name} {split}")), "plots")
        mlflow.pyfunc.log_model(name="model", python_model=LinearPyfunc(),
                                artifacts={"pipeline": str(pipeline_dir), "meta": str(meta_file)},
                                code_paths=registry.code_paths(), pip_requirements=["pyspark==4.0.5", "pandas"])
        tags = {"model_type": "linear", "silver_version": str(version), "rows": json.dumps(counts),
                "sources": ",".join(sorted({s for v in counts.values() for s in v})),
                "train_config": train_fingerprint(cfg, "linear")}

        def champion_f1(champion_version: str) -> float:
            other = registry.load(cfg, f"{name}/{champion_version}")
            frame: pd.DataFrame = splits["validation"].where(F.col(label).isNotNull()).select(
                "text_clean", label).toPandas()
            got = other.predict(pd.DataFrame({"text": frame["text_clean"]}))
            return _macro_f1_labels(frame[label].to_numpy().astype(int), got["sentiment"].map(
                {c: i for i, c in enumerate(classes)}).fillna(-1).to_numpy().astype(int))

        registered = registry.register(cfg, client, name, run.info.run_id, "model", val_f1, val_hash, tags,
                                       request.promote, champion_f1)
    write_metrics(spark, cfg, name, registered.version, registered.run_id,
                  {"test": test_rows, "validation": val_rows})
    return TrainReport(run_id=run_id, model="linear", name=name, version=registered.version,
                       promoted=registered.promoted, why=registered.why, silver_version=version,
                       rows={s: sum(v.values()) for s, v in counts.items()}, val_macro_f1=val_f1,
                       test_metrics=test_rows, seconds=time.perf_counter() - clock)
