"""The MLlib baseline, trained natively in Spark: word 1..n-grams hashed, TF-IDF, logistic regression.

The features are fitted once on train and cached; only the logistic regression is refitted for each
regularisation strength, and the one with the best validation macro-F1 is kept.
"""

from __future__ import annotations

import logging

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.feature import IDF, HashingTF, NGram, RegexTokenizer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from reviewlake.config import LinearSettings

log = logging.getLogger(__name__)

TEXT_COL = "text_clean"
# Runs of letters, digits and apostrophes: "don't" stays one token, so a negation is a feature of its own.
TOKEN_PATTERN = r"[\w']+"
# The pipeline's own columns, prefixed so they never collide with a silver column.
_WORDS = "_linear_words"
_TF = "_linear_tf"
_FEATURES = "_linear_features"
_RAW = "_linear_raw"
_PROBABILITY = "_linear_probability"
_PREDICTION = "_linear_prediction"
_WEIGHT = "_linear_weight"


def _grams(n: int) -> str:
    return _WORDS if n == 1 else f"_linear_{n}grams"


def build_pipeline(settings: LinearSettings, label_col: str, reg_param: float) -> Pipeline:
    """The unfitted pipeline: tokens, n-grams, one ``HashingTF`` per order, IDF, logistic regression.

    The hashed counts of every order are assembled before a single IDF (one pass over the data to
    fit, instead of one per order). The regression is multinomial, which serves 2 and 3 classes alike,
    and does not standardise: with TF-IDF, standardising divides each coefficient's penalty by its
    feature's spread, which lets rare n-grams take large weights (best validation macro-F1 on Rotten
    Tomatoes 0.756 with it, 0.790 without).

    Parameters
    ----------
    settings
        ``train.linear`` of the config.
    label_col
        The integer class column (``sentiment_binary`` or ``sentiment_3``).
    reg_param
        L2 (or elastic-net) regularisation strength of the regression.
    """
    orders = range(1, settings.ngram + 1)
    return Pipeline(stages=[
        RegexTokenizer(inputCol=TEXT_COL, outputCol=_WORDS, pattern=TOKEN_PATTERN, gaps=False),
        *[NGram(n=n, inputCol=_WORDS, outputCol=_grams(n)) for n in orders if n > 1],
        *[HashingTF(inputCol=_grams(n), outputCol=f"{_TF}_{n}", numFeatures=settings.num_features) for n in orders],
        VectorAssembler(inputCols=[f"{_TF}_{n}" for n in orders], outputCol=_TF),
        IDF(inputCol=_TF, outputCol=_FEATURES, minDocFreq=settings.min_doc_freq),
        LogisticRegression(
            featuresCol=_FEATURES, labelCol=label_col, predictionCol=_PREDICTION, probabilityCol=_PROBABILITY,
            rawPredictionCol=_RAW, family="multinomial", regParam=reg_param,
            elasticNetParam=settings.elastic_net, maxIter=settings.max_iter, standardization=False,
        ),
    ])


def _macro_f1(scored: DataFrame, label_col: str, classes: list[float]) -> float:
    """Mean of MLlib's per-class F1 over ``classes`` (those present in the labels)."""
    evaluator = MulticlassClassificationEvaluator(labelCol=label_col, predictionCol=_PREDICTION,
                                                  metricName="fMeasureByLabel")
    return sum(evaluator.evaluate(scored, {evaluator.metricLabel: c}) for c in classes) / len(classes)


def train_linear(
    train: DataFrame,
    validation: DataFrame,
    settings: LinearSettings,
    label_col: str,
    *,
    balance_classes: bool = True,
) -> tuple[PipelineModel, dict[float, float]]:
    """Fit the pipeline for each of ``settings.reg_params`` and keep the best on validation.

    Rows whose ``label_col`` is null are dropped from both frames. The features are fitted on train
    once; each regularisation strength refits only the regression on the cached features. The
    validation macro-F1 is the unweighted mean of MLlib's ``fMeasureByLabel`` over the classes
    present in validation (MLlib's ``f1`` is weighted by class size, not macro). Ties go to the
    strength listed first.

    With ``balance_classes`` each train row weighs ``rows / (classes * rows of its class)``, so every
    class counts alike in the loss. It raised the best validation macro-F1 on Rotten Tomatoes (58 %
    fresh) from 0.790 to 0.800, and from 0.666 to 0.712 with the rotten reviews cut to 1 in 5.

    Returns
    -------
    The fitted pipeline with the best strength, and the validation macro-F1 of every strength.
    """
    for name, frame in (("train", train), ("validation", validation)):
        missing = sorted({TEXT_COL, label_col} - set(frame.columns))
        if missing:
            raise ValueError(f"the {name} frame lacks column(s) {missing}; pass silver rows with "
                             f"'{TEXT_COL}' and the label '{label_col}'")
    if not settings.reg_params:
        raise ValueError("train.linear.reg_params is empty; list at least one regularisation strength")
    *feature_stages, regression = build_pipeline(settings, label_col, settings.reg_params[0]).getStages()
    assert isinstance(regression, LogisticRegression)
    labelled = F.col(label_col).isNotNull()
    sc = train.sparkSession.sparkContext
    sc.setJobDescription("linear: count classes, fit TF-IDF features")
    counts = {r[0]: r[1] for r in train.where(labelled).groupBy(label_col).count().collect()}
    if not counts:
        raise ValueError(f"train has no row with a '{label_col}' label; nothing to fit")
    featurizer = Pipeline(stages=feature_stages).fit(train.where(labelled))
    kept = [F.col(label_col), F.col(_FEATURES)]
    if balance_classes:
        rows = sum(counts.values())
        weights = F.create_map(*[F.lit(x) for c, n in counts.items() for x in (c, rows / (len(counts) * n))])
        # In the cached frame: a column added after the cache would make the regression cache again.
        kept.append(weights[F.col(label_col)].alias(_WEIGHT))
        regression = regression.copy({regression.weightCol: _WEIGHT})
    train_x = featurizer.transform(train.where(labelled)).select(*kept).persist()
    val_x = featurizer.transform(validation.where(labelled)).select(label_col, _FEATURES).persist()
    try:
        classes = sorted(float(r[0]) for r in val_x.select(label_col).distinct().collect())
        if not classes:
            raise ValueError(f"validation has no row with a '{label_col}' label; the strength cannot be chosen")
        scores: dict[float, float] = {}
        best: LogisticRegressionModel | None = None
        best_f1 = -1.0
        for reg in settings.reg_params:
            sc.setJobDescription(f"linear: logistic regression, reg_param {reg}")
            fitted = regression.copy({regression.regParam: reg}).fit(train_x)
            scores[reg] = _macro_f1(fitted.transform(val_x), label_col, classes)
            log.info("linear %s reg_param %g: validation macro-F1 %.4f", label_col, reg, scores[reg])
            if scores[reg] > best_f1:
                best, best_f1 = fitted, scores[reg]
    finally:
        train_x.unpersist()
        val_x.unpersist()
        sc.setJobDescription(None)  # type: ignore[arg-type]
    assert best is not None
    return PipelineModel(stages=[*featurizer.stages, best]), scores


def predict_linear(model: PipelineModel, df: DataFrame) -> DataFrame:
    """``df`` with ``proba`` (array<double>, one probability per class) and ``pred`` (int, the argmax)."""
    scored = model.transform(df)
    kept = [F.col(f"`{c}`") for c in df.columns if c not in ("proba", "pred")]
    return scored.select(*kept, vector_to_array(F.col(_PROBABILITY)).alias("proba"),
                         F.col(_PREDICTION).cast("int").alias("pred"))
