"""Checks of a registered model beyond its test splits: reviews from another domain, and long reviews.

- **Product reviews** (``conf/checks/product_reviews.csv``): short Amazon-style reviews written by
  hand for this check, with their label. The real labeled corpora are movies and drugs; these ask
  whether the model carries over to the product reviews it is meant to score. 40 rows: a coarse
  check, not a benchmark.
- **Long reviews**: the validation and test rows of silver longer than the encoder's window, scored
  with windows averaged (what ``predict`` does) and with the first window only (truncation), so the
  README can say what windows do to accuracy on long reviews.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from reviewlake import registry
from reviewlake.config import PROJECT_ROOT, Config
from reviewlake.predict import predict_texts

PRODUCT_REVIEWS = PROJECT_ROOT / "conf" / "checks" / "product_reviews.csv"


@dataclass
class CheckReport:
    model: str
    product_rows: int = 0
    product_accuracy: float = float("nan")
    product_misses: list[tuple[str, str]] = field(default_factory=list)   # (label, text)
    long: list[tuple[str, int, float, float]] = field(default_factory=list)  # source, rows, windows, first

    def summary(self) -> str:
        lines = [f"{self.model}: hand-written product reviews: accuracy {self.product_accuracy:.4f} "
                 f"of {self.product_rows}"]
        lines += [f"  missed ({label}): {text}" for label, text in self.product_misses]
        if self.long:
            lines.append("long reviews of silver's validation + test splits (longer than one window):")
            lines += [f"  {source:<18} {rows:>5} rows: accuracy {windows:.4f} with windows averaged, "
                      f"{first:.4f} with the first window only" for source, rows, windows, first in self.long]
        else:
            lines.append("long reviews: none (or the model does not window: linear reads whole texts)")
        return "\n".join(lines)


def check_model(spark: SparkSession, cfg: Config, reference: str, reviews: Path = PRODUCT_REVIEWS) -> CheckReport:
    """Run both checks on ``reference`` (``NAME@ALIAS`` or ``NAME/VERSION``)."""
    model = registry.load(cfg, reference)
    report = CheckReport(reference)
    frame = pd.read_csv(reviews, dtype=str, keep_default_na=False)
    if not {"label", "text"} <= set(frame.columns):
        raise ValueError(f"{reviews}: needs 'label' and 'text' columns (it has {list(frame.columns)})")
    got = predict_texts(spark, cfg, model, frame["text"])
    hit = got["sentiment"].to_numpy() == frame["label"].to_numpy()
    report.product_rows, report.product_accuracy = len(frame), float(hit.mean())
    report.product_misses = [(lab, text) for lab, text, h in zip(frame["label"], frame["text"], hit) if not h]
    predictor = getattr(model.unwrap_python_model(), "predictor", None)
    if predictor is not None and "max_windows" in predictor.meta:  # a family that windows long texts
        report.long = _long_reviews(spark, cfg, predictor)
    return report


def _long_reviews(spark: SparkSession, cfg: Config, predictor: Any) -> list[tuple[str, int, float, float]]:
    meta = predictor.meta
    held_out = (spark.table(cfg.table("silver")).where(F.col("split").isin("validation", "test"))
                .where(F.col(cfg.train.label).isNotNull()).select("source", "text_clean", cfg.train.label))
    rows = pd.DataFrame(held_out.toPandas())
    if rows.empty:
        return []
    lengths = np.asarray([len(x) for x in predictor.tokenizer(rows["text_clean"].tolist(),
                                                              add_special_tokens=False)["input_ids"]])
    long = rows[lengths > meta["max_length"] - 2].reset_index(drop=True)
    if long.empty:
        return []
    truth = long[cfg.train.label].astype(int).to_numpy()
    windowed = predictor.scores(long["text_clean"].tolist())["proba"].argmax(1)
    configured = meta["max_windows"]
    try:
        meta["max_windows"] = 1
        first = predictor.scores(long["text_clean"].tolist())["proba"].argmax(1)
    finally:
        meta["max_windows"] = configured
    out = []
    for source in sorted(long["source"].unique()):
        keep = (long["source"] == source).to_numpy()
        out.append((source, int(keep.sum()), float((windowed[keep] == truth[keep]).mean()),
                    float((first[keep] == truth[keep]).mean())))
    return out
