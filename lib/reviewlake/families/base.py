"""What every model family is and shares: the :class:`Family` record the stages dispatch over, the
columns a prediction adds, the pyfunc face of a saved model folder, and the input contract.

A family module (``families/<name>.py``) is the one place for its model: the network (or MLlib
pipeline), its train stage, its predictor and pyfunc, which backends it trains through, the columns
it predicts and the packages its registered models need. It declares ``FAMILIES``, a tuple of
:class:`Family` records (the multi-task module has three: full precision, int8 and BitLinear).

Inference imports only this module, the family's module and what they import at the top; a family
imports the training runtime (``reviewlake.training``) inside its train functions, so loading a
registered model never imports training code.

The input contract: a model version carries the cleaning rules it was trained with (MLflow model
metadata ``cleaning``, and ``meta.json`` in the model folder), and every path that predicts cleans
raw text with those rules (:func:`cleaning_of`), never with the config of the day.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from reviewlake.config import PROJECT_ROOT, Cleaning
from reviewlake.text import has_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from reviewlake.config import Config
    from reviewlake.training.stage import TrainReport, TrainRequest

SENTIMENT_NAMES = {2: ["negative", "positive"], 3: ["negative", "neutral", "positive"]}
# The columns every model's predict adds to a table of texts, and the topic columns of a topic model.
SENTIMENT_COLUMNS = ("status", "sentiment", "sentiment_prob", "rating_pred", "aspects", "aspect_probs")
TOPIC_COLUMNS = ("topic_id", "topic_prob", "topic_label")


@dataclass(frozen=True)
class Family:
    """One model type: how it trains, what it predicts, what its registered models need.

    Attributes
    ----------
    model_type
        The name on the command line (``train --model``) and in the registry (prefix + model type).
    train
        ``train(spark, cfg, request) -> TrainReport``: fit, evaluate per source, register.
    section
        Its own settings under ``train.<section>`` in the config, or None when it reads the shared
        ones. A section is part of this family's training fingerprint only.
    launcher
        None when it trains through a torch backend (TorchDistributor or Horovod); else how it trains
        instead (``Spark MLlib``), and then ``--backend`` does not apply.
    columns
        The columns its ``predict`` fills (of :data:`SENTIMENT_COLUMNS` + :data:`TOPIC_COLUMNS`).
    spark_scores
        ``spark_scores(wrapper, rows) -> DataFrame``: batch scoring natively in Spark with the loaded
        python model (``wrapper``), instead of the pandas UDF that loads the model in each worker.
    uses_embeddings
        Batch scoring hands it the stored encoder embeddings of its encoder (``tables.embeddings``).
    candidates
        ``make models`` trains it once per ``train.candidates`` entry.
    up_to_date
        ``up_to_date(spark, cfg, name) -> "NAME vN" | None`` when "trained on this silver with these
        settings" is not how it is decided (a quantized version follows its source instead).
    fingerprint_all
        Its fingerprint covers every shared train setting and every section but the other families'
        own (the first families' rule, kept so their versions stay up to date).
    """

    model_type: str
    train: Callable[["SparkSession", "Config", "TrainRequest"], "TrainReport"]
    section: str | None = None
    launcher: str | None = None
    columns: tuple[str, ...] = SENTIMENT_COLUMNS
    spark_scores: Callable[[Any, "DataFrame"], "DataFrame"] | None = None
    uses_embeddings: bool = False
    candidates: bool = False
    up_to_date: Callable[["SparkSession", "Config", str], str | None] | None = None
    fingerprint_all: bool = False


def requirements(*packages: str) -> list[str]:
    """``pip_requirements`` of a registered model: each package pinned as ``requirements/constraints.txt``
    pins it (a package it does not pin is listed bare)."""
    pins: dict[str, str] = {}
    for line in (PROJECT_ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if found:
            pins[found[1].lower().replace("_", "-")] = found[2]
    return [f"{p}=={pins[p.lower()]}" if p.lower() in pins else p for p in packages]


def text_mask(texts: pd.Series) -> pd.Series:
    """Which ``texts`` have text (:func:`reviewlake.text.has_text`): the rows a model scores."""
    return texts.map(lambda t: isinstance(t, str) and has_text(t)).astype(bool)


def sentiment_frame(texts: pd.Series, num_classes: int, score: Callable[[list[str]], dict[str, np.ndarray]],
                    ) -> tuple[pd.DataFrame, pd.Series, dict[str, np.ndarray] | None]:
    """The columns every model's ``predict`` adds to a table of texts: ``status`` (a text without a
    character that is not white space, control or format gets ``empty_text``, not a score: the ingest's
    rule, :func:`reviewlake.text.has_text`), ``sentiment`` and its probability, and ``rating_pred`` /
    ``aspects`` / ``aspect_probs`` left empty for a model that has them to fill.

    ``score`` is called once, with the texts that have text, and returns at least ``proba``. Returns the
    frame, the mask of the scored rows, and what ``score`` returned (None when no row had text).
    """
    names = SENTIMENT_NAMES[num_classes]
    ok = text_mask(texts)
    out = pd.DataFrame({"status": np.where(ok, "ok", "empty_text"), "sentiment": None, "sentiment_prob": np.nan,
                        "rating_pred": np.nan, "aspects": "", "aspect_probs": "{}"}, index=texts.index)
    if not ok.any():
        return out, ok, None
    scores = score(texts[ok].tolist())
    best = scores["proba"].argmax(1)
    out.loc[ok, "sentiment"] = [names[i] for i in best]
    out.loc[ok, "sentiment_prob"] = scores["proba"][np.arange(len(best)), best]
    return out, ok, scores


class ModelFolderPyfunc(PythonModel):
    """``mlflow.pyfunc`` face of a saved model folder (``meta.json`` and the weights): a frame with a
    ``text`` column (cleaned by the version's rules) in, the predictor's ``predict_frame`` out.
    Subclasses name the predictor."""

    predictor_class: Any = None

    def load_context(self, context: Any) -> None:
        self.path = Path(context.artifacts["model"])
        self.predictor = self.predictor_class(self.path)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.predictor.meta)

    def use_device(self, device: str) -> None:
        """Score on ``device`` (``cuda:0``) from now on (an int8 model stays on the CPU)."""
        self.predictor = self.predictor_class(self.path, device=device)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if "text" not in model_input.columns:
            raise ValueError("the input needs a 'text' column")
        return self.predict_input(model_input)

    def predict_input(self, model_input: pd.DataFrame) -> pd.DataFrame:
        return self.predictor.predict_frame(model_input["text"])


def read_meta(model_dir: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((model_dir / "meta.json").read_text())
    return meta


def cleaning_of(model: Any, default: Cleaning) -> Cleaning:
    """The cleaning rules the loaded pyfunc ``model`` was trained with: its MLflow metadata, else (a
    version registered before the metadata held them) its ``meta.json``, else ``default``."""
    saved = (getattr(getattr(model, "metadata", None), "metadata", None) or {}).get("cleaning")
    if saved is None:
        python_model = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
        saved = (getattr(python_model, "meta", None) or {}).get("cleaning")
    return Cleaning.model_validate(saved) if saved is not None else default

