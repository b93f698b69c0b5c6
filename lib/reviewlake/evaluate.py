"""Model evaluation shared by every model family: figures per source, confusion plots, ``model_metrics``.

Every figure is computed on the rows of one source only, so a generated corpus never blends into
the figures of a real one; there is no row over all sources.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from matplotlib.figure import Figure
import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sklearn.metrics import (
    confusion_matrix, f1_score, hamming_loss, mean_absolute_error, precision_recall_fscore_support, r2_score,
    roc_auc_score, root_mean_squared_error,
)

from reviewlake import tables
from reviewlake.config import Config
from reviewlake.metrics import macro_f1_score

log = logging.getLogger(__name__)

MODEL_METRICS_SCHEMA = T.StructType(
    [
        T.StructField("model", T.StringType(), False),
        T.StructField("version", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("split", T.StringType(), False),
        T.StructField("source", T.StringType(), False),
        T.StructField("metric", T.StringType(), False),
        T.StructField("value", T.DoubleType(), False),
        T.StructField("evaluated_at", T.TimestampType(), False),
    ]
)
_METRICS_KEY = ["model", "version", "split", "source", "metric"]
# An aspect is predicted present from this probability on.
ASPECT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Predictions:
    """What one model predicted for the rows of one split, beside the truth.

    Attributes
    ----------
    source
        ``(n,)`` source name of each row.
    y_true
        ``(n,)`` integer class, -1 where the row has no sentiment label.
    proba
        ``(n, k)`` class probabilities; the predicted class is the most probable one.
    rating_true
        ``(n,)`` stars 1-5, NaN where the row has none.
    rating_pred
        ``(n,)`` predicted stars, or None when the model has no rating head.
    aspects_true, aspects_prob
        ``(n, A)`` multi-hot aspects and their predicted probabilities, or None when the model has no
        aspect head.
    """

    source: np.ndarray
    y_true: np.ndarray
    proba: np.ndarray
    rating_true: np.ndarray
    rating_pred: np.ndarray | None = None
    aspects_true: np.ndarray | None = None
    aspects_prob: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.source)
        if self.proba.ndim != 2:
            raise ValueError(f"'proba' must be (rows, classes), got shape {self.proba.shape}")
        if not np.issubdtype(self.y_true.dtype, np.integer):
            raise ValueError(f"'y_true' must hold integers (-1 for no label), got dtype {self.y_true.dtype}; "
                             "fill missing labels with -1 and cast to int")
        for name in ("y_true", "proba", "rating_true", "rating_pred", "aspects_true", "aspects_prob"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"'{name}' has {len(value)} rows but 'source' has {n}; every array holds "
                                 "one entry per row of the split")
        if (self.aspects_true is None) != (self.aspects_prob is None):
            raise ValueError("'aspects_true' and 'aspects_prob' go together: give both or neither")
        if self.aspects_true is not None and self.aspects_prob is not None \
                and self.aspects_true.shape != self.aspects_prob.shape:
            raise ValueError(f"'aspects_true' {self.aspects_true.shape} and 'aspects_prob' "
                             f"{self.aspects_prob.shape} must have the same shape")


def _sentiment(y: np.ndarray, proba: np.ndarray, class_names: list[str]) -> list[tuple[str, float]]:
    """Classification figures on labelled rows; macro averages over the classes present in ``y``.

    A class with no example in ``y`` has no recall, so it is left out of the macro averages (the
    convention of MLlib's ``MulticlassMetrics``); its wrong predictions still lower the recall of the
    classes they were taken from. ``f1_macro`` is :func:`reviewlake.metrics.macro_f1_score`, the figure
    model selection uses.
    """
    pred = proba.argmax(axis=1)
    present = np.unique(y)
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=present, zero_division=0)
    out = [("accuracy", float(np.mean(pred == y)))]
    for i, c in enumerate(present):
        name = class_names[c]
        out += [(f"precision_{name}", float(p[i])), (f"recall_{name}", float(r[i])), (f"f1_{name}", float(f[i]))]
    out += [("precision_macro", float(p.mean())), ("recall_macro", float(r.mean())),
            ("f1_macro", macro_f1_score(y, pred, proba.shape[1]))]
    if len(present) > 1:
        if proba.shape[1] == 2:
            auc = roc_auc_score(y == 1, proba[:, 1])
        else:  # macro one-vs-rest over the classes present (sklearn's needs every class present)
            auc = np.mean([roc_auc_score(y == c, proba[:, c]) for c in present])
        out.append(("roc_auc", float(auc)))
    return out


def _rating(true: np.ndarray, pred: np.ndarray) -> list[tuple[str, float]]:
    rated = ~np.isnan(true)
    out: list[tuple[str, float]] = [("n_rating", float(rated.sum()))]
    if not rated.any():
        return out
    t, p = true[rated], pred[rated]
    out += [("rating_mae", float(mean_absolute_error(t, p))), ("rating_rmse", float(root_mean_squared_error(t, p)))]
    if len(t) > 1:
        out.append(("rating_r2", float(r2_score(t, p))))
    return out


def _aspects(true: np.ndarray, prob: np.ndarray) -> list[tuple[str, float]]:
    pred = (prob >= ASPECT_THRESHOLD).astype(int)
    # An aspect neither present nor predicted in this source has no F1 (0/0): NaN leaves it out of
    # the average instead of counting it as 0.
    f1 = f1_score(true, pred, average="macro", zero_division=np.nan)
    out = [("aspects_hamming_loss", float(hamming_loss(true, pred)))]
    if not np.isnan(f1):
        out.append(("aspects_f1_macro", float(f1)))
    return out


def metrics(pred: Predictions, class_names: list[str]) -> list[tuple[str, str, float]]:
    """Evaluation figures of one split, as ``(source, metric, value)`` rows, for every source apart.

    Per source: ``n`` (rows), ``n_sentiment`` (rows with a label); on the labelled rows
    ``accuracy``, ``precision_/recall_/f1_<class>`` and their ``_macro`` means over the classes the
    source has, ``roc_auc`` (binary: on the positive class; 3 classes: macro one-vs-rest; absent when
    the source has one class); with a rating head ``n_rating``, ``rating_mae``, ``rating_rmse``,
    ``rating_r2`` on rows with a rating (R2 from two rows on); with an aspect head
    ``aspects_f1_macro`` (predicted from probability 0.5) and ``aspects_hamming_loss`` on every row.
    A figure that is undefined for a source is left out rather than written as NaN.

    Parameters
    ----------
    pred
        The split's predictions.
    class_names
        Name of each class, in the column order of ``pred.proba``: used in the metric names.
    """
    if len(class_names) != pred.proba.shape[1]:
        raise ValueError(f"{len(class_names)} class names {class_names} for {pred.proba.shape[1]} probability "
                         "columns; give one name per column of 'proba'")
    if pred.y_true.size and pred.y_true.max() >= len(class_names):
        raise ValueError(f"'y_true' holds class {pred.y_true.max()} but there are {len(class_names)} classes "
                         f"{class_names}; labels are 0..{len(class_names) - 1}, -1 for none")
    rows: list[tuple[str, str, float]] = []
    for source in sorted(set(pred.source.tolist())):
        mine = pred.source == source
        labelled = mine & (pred.y_true >= 0)
        figures: list[tuple[str, float]] = [("n", float(mine.sum())), ("n_sentiment", float(labelled.sum()))]
        if labelled.any():
            figures += _sentiment(pred.y_true[labelled], pred.proba[labelled], class_names)
        if pred.rating_pred is not None:
            figures += _rating(pred.rating_true[mine].astype(float), pred.rating_pred[mine].astype(float))
        if pred.aspects_true is not None and pred.aspects_prob is not None:
            figures += _aspects(pred.aspects_true[mine], pred.aspects_prob[mine])
        rows += [(str(source), metric, value) for metric, value in figures]
    return rows


def confusion_png(pred: Predictions, class_names: list[str], path: Path, title: str) -> Path:
    """Draw one confusion matrix (counts of labelled rows) per source into the PNG ``path``."""
    sources = sorted(set(pred.source.tolist()))
    if not sources:
        raise ValueError(f"no rows to draw in {path}: the predictions are empty")
    k = len(class_names)
    fig = Figure(figsize=(3.2 * len(sources) + 1, 3.6))
    axes = fig.subplots(1, len(sources), squeeze=False)
    for ax, source in zip(axes[0], sources):
        labelled = (pred.source == source) & (pred.y_true >= 0)
        matrix = confusion_matrix(pred.y_true[labelled], pred.proba[labelled].argmax(axis=1), labels=range(k))
        ax.imshow(matrix, cmap="Blues")
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{matrix[i, j]:,}", ha="center", va="center",
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
        ax.set_xticks(range(k), class_names, rotation=30)
        ax.set_yticks(range(k), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{source} ({int(labelled.sum()):,} labelled)", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def write_metrics(
    spark: SparkSession,
    cfg: Config,
    model: str,
    version: str,
    run_id: str,
    figures: Mapping[str, Iterable[tuple[str, str, float]]],
) -> int:
    """Write the ``(source, metric, value)`` rows of one model version, per split, into ``model_metrics``.

    One Delta MERGE on (model, version, split, source, metric) for all the splits given: re-evaluating a
    version replaces its figures, and the figures of that version and those splits that the new rows no
    longer hold (a metric now undefined) are deleted, so the table always shows one evaluation. Returns
    the rows written.
    """
    rows = [(split, s, m, v) for split, given in figures.items() for s, m, v in given]
    repeated = [key for key, count in Counter((split, s, m) for split, s, m, _ in rows).items() if count > 1]
    if repeated:
        raise ValueError(f"(split, source, metric) {repeated[:3]} appear more than once in the rows for {model} "
                         f"version {version}; each figure is written once")
    if not rows:
        return 0
    name = cfg.table("model_metrics")
    table = tables.owned_table(spark, name, MODEL_METRICS_SCHEMA, "model_metrics")
    fresh = (
        spark.createDataFrame(
            [(model, version, run_id, split, s, m, float(v)) for split, s, m, v in rows],
            T.StructType(MODEL_METRICS_SCHEMA.fields[:-1]),
        )
        .withColumn("evaluated_at", F.current_timestamp())
    )
    this_evaluation = (F.col("t.model") == model) & (F.col("t.version") == version) & F.col("t.split").isin(
        list(figures))
    result = (
        table.alias("t")
        .merge(fresh.alias("s"), " AND ".join(f"t.{k} = s.{k}" for k in _METRICS_KEY))
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .whenNotMatchedBySourceDelete(this_evaluation)
        .execute()
        .first()
    )
    written = int(result["num_updated_rows"]) + int(result["num_inserted_rows"]) if result else 0
    log.info("model_metrics: %d figures of %s version %s (%s)", written, model, version, ", ".join(figures))
    return written

