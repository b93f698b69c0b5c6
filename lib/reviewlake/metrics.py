"""The one macro-F1: model selection, the training loops' early stopping and ``model_metrics`` use it.

Macro-F1 is the mean F1 over the classes present in the truth (the convention of MLlib's
``MulticlassMetrics``): a class with no example has no recall and is left out, its wrong predictions
still lower the precision of the class they were given. A row without a prediction (``NO_PREDICTION``:
a model that returned no class for it) counts as a miss of its true class, never as a class of its
own; a row without a label (-1) is not counted. Pure numpy: it runs in training processes too.
"""

from __future__ import annotations

import numpy as np

NO_PREDICTION = -1


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) over labelled rows: ``(k, k + 1)``, the last column the rows that got
    no prediction."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions; give one prediction per row")
    if y_true.size and (y_true.max() >= num_classes or y_pred.max() >= num_classes):
        raise ValueError(f"a class above {num_classes - 1} in the labels or predictions: classes are "
                         f"0..{num_classes - 1}, -1 for none")
    labelled = y_true >= 0
    column = np.where(y_pred[labelled] >= 0, y_pred[labelled], num_classes)
    counts = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    np.add.at(counts, (y_true[labelled], column), 1)
    return counts


def macro_f1(counts: np.ndarray) -> float:
    """Macro-F1 of a confusion matrix (rows true, columns predicted; an extra last column, if any, holds
    the rows without a prediction). 0.0 when no row is labelled."""
    k = counts.shape[0]
    tp = np.diag(counts[:, :k]).astype(float)
    predicted = counts[:, :k].sum(0).astype(float)
    support = counts.sum(1).astype(float)
    present = support > 0
    if not present.any():
        return 0.0
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    return float(f1[present].mean())


def macro_f1_score(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """:func:`macro_f1` of labels and predicted classes (``NO_PREDICTION`` where a row got none)."""
    return macro_f1(confusion(y_true, y_pred, num_classes))
