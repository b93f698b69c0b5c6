"""Predictions from a trained multi-task model: windows for long texts, the seed's JSON shape, MLflow pyfunc.

A saved model is a folder: ``model.pt`` (the whole module's state), ``encoder/`` (the encoder's
config and tokenizer, so it loads offline without the package it was fine-tuned from) and
``meta.json`` (classes, aspects, pooling, lengths). :class:`MultitaskPredictor` scores texts;
:class:`MultitaskPyfunc` is the same behind ``mlflow.pyfunc`` so every later job loads
``models:/NAME@ALIAS`` and never a path by hand.

Texts are expected cleaned as silver's ``text_clean`` is (the predict job and batch scoring apply the
same Spark cleaning rules first). A text longer than the encoder's maximum is split into windows of
``max_length`` tokens, ``window_stride`` apart (at most ``max_windows``), and the logits averaged.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Callable

from mlflow.pyfunc import PythonModel
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SENTIMENT_NAMES = {2: ["negative", "positive"], 3: ["negative", "neutral", "positive"]}


def save_model_dir(model: Any, tokenizer: Any, meta: dict[str, Any], out: Path) -> Path:
    """Write a trained :class:`~reviewlake.models.multitask.MultiTaskModel` as a model folder."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    if meta.get("quantized") == "bitlinear":  # ternary weights packed four to a byte (freezes the model)
        from reviewlake.models.bitlinear import pack

        torch.save(pack(model), out / "model.pt")
    else:
        torch.save(model.state_dict(), out / "model.pt")
    model.encoder.config.save_pretrained(out / "encoder")
    tokenizer.save_pretrained(out / "encoder")
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return out


def has_text(texts: pd.Series) -> pd.Series:
    """Which texts get a score: the others are empty or blank (status ``empty_text``)."""
    return texts.fillna("").str.strip() != ""


def sentiment_frame(texts: pd.Series, num_classes: int, score: Callable[[list[str]], dict[str, np.ndarray]],
                    ) -> tuple[pd.DataFrame, pd.Series, dict[str, np.ndarray] | None]:
    """The columns every model's ``predict`` adds to a table of texts: ``status`` (an empty text gets
    ``empty_text``, not a score), ``sentiment`` and its probability, and ``rating_pred`` / ``aspects`` /
    ``aspect_probs`` left empty for a model that has them to fill.

    ``score`` is called once, with the non-empty texts, and returns at least ``proba``. Returns the
    frame, the mask of the scored rows, and what ``score`` returned (None when no row had text).
    """
    names = SENTIMENT_NAMES[num_classes]
    ok = has_text(texts)
    out = pd.DataFrame({"status": np.where(ok, "ok", "empty_text"), "sentiment": None, "sentiment_prob": np.nan,
                        "rating_pred": np.nan, "aspects": "", "aspect_probs": "{}"}, index=texts.index)
    if not ok.any():
        return out, ok, None
    scores = score(texts[ok].tolist())
    best = scores["proba"].argmax(1)
    out.loc[ok, "sentiment"] = [names[i] for i in best]
    out.loc[ok, "sentiment_prob"] = scores["proba"][np.arange(len(best)), best]
    return out, ok, scores


class MultitaskPredictor:
    """Scores texts with a saved multi-task model, on the CPU unless ``device`` says otherwise."""

    def __init__(self, model_dir: Path, device: str = "cpu", threads: int | None = None) -> None:
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from reviewlake.models.multitask import MultiTaskModel

        if threads:
            torch.set_num_threads(threads)
        self.model_dir = model_dir
        self.meta = json.loads((model_dir / "meta.json").read_text())
        config = AutoConfig.from_pretrained(model_dir / "encoder", local_files_only=True)
        self.model: Any = MultiTaskModel(AutoModel.from_config(config), self.meta["num_classes"],
                                         len(self.meta["aspects"]), self.meta["pooling"])
        state = torch.load(model_dir / "model.pt", map_location="cpu")
        if self.meta.get("quantized") == "int8":  # the saved state is of the quantized module
            from reviewlake.models.quantize import quantize_int8

            self.model = quantize_int8(self.model)
            device = "cpu"  # dynamic int8 kernels run on the CPU
        if self.meta.get("quantized") == "bitlinear":
            from reviewlake.models.bitlinear import to_bitlinear, unpack

            unpack(to_bitlinear(self.model, self.meta["activation_bits"]), state)
        else:
            self.model.load_state_dict(state)
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir / "encoder", local_files_only=True)

    def scores(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Class probabilities, rating and aspect probabilities per text (windows averaged)."""
        import torch

        from reviewlake.models.multitask import windows
        from reviewlake.training.loop import collate

        m = self.meta
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        pieces, owner = [], []
        for i, x in enumerate(ids):
            for w in windows(x or [self.tokenizer.unk_token_id], m["max_length"] - 2, m["window_stride"],
                             m["max_windows"]):
                pieces.append(np.asarray(w))
                owner.append(i)
        order = np.argsort([len(p) for p in pieces])  # similar lengths per batch: less padding
        logits = np.zeros((len(pieces), m["num_classes"]), np.float32)
        rating = np.zeros(len(pieces), np.float32)
        aspects = np.zeros((len(pieces), len(m["aspects"])), np.float32)
        tok = self.tokenizer
        # bf16 on a GPU (the heads' outputs are cast back to float32 below); float32 on the CPU.
        with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=self.device.type == "cuda"):
            for b in range(0, len(pieces), batch_size):
                rows = order[b:b + batch_size]
                batch = collate([pieces[r] for r in rows], tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
                out = self.model(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))
                logits[rows], rating[rows], aspects[rows] = (t.float().cpu().numpy() for t in out)
        owner_arr = np.asarray(owner)
        counts = np.bincount(owner_arr, minlength=len(texts)).astype(np.float32)[:, None]

        def mean(values: np.ndarray) -> np.ndarray:
            total = np.zeros((len(texts),) + values.shape[1:], np.float32)
            np.add.at(total, owner_arr, values)
            return total / (counts if values.ndim == 2 else counts[:, 0])

        avg = mean(logits)
        proba = np.exp(avg - avg.max(1, keepdims=True))
        proba /= proba.sum(1, keepdims=True)
        return {"proba": proba, "rating": mean(rating), "aspects": 1 / (1 + np.exp(-mean(aspects))),
                "windows": counts[:, 0]}

    def predict_frame(self, texts: pd.Series) -> pd.DataFrame:
        """The columns ``predict`` adds to a table of texts; an empty text gets a status, not a score."""
        out, ok, s = sentiment_frame(texts, self.meta["num_classes"], self.scores)
        if s is not None:
            if self.meta.get("rating_rows", 1):  # a model trained without star ratings predicts none
                out.loc[ok, "rating_pred"] = s["rating"]
            out.loc[ok, "aspects"] = [
                ";".join(a for a, p in zip(self.meta["aspects"], row) if p >= 0.5) for row in s["aspects"]]
            out.loc[ok, "aspect_probs"] = [json.dumps({a: round(float(p), 4) for a, p in zip(self.meta["aspects"], row)})
                                           for row in s["aspects"]]
        return out



def save_joint_topic_dir(model: Any, encoder: Any, tokenizer: Any, meta: dict[str, Any], topics: list[dict[str, Any]],
                         out: Path) -> Path:
    """Write a trained joint sentiment-topic model with its (frozen) encoder and readable topics."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    if meta.get("quantized") == "bitlinear":  # ternary weights packed four to a byte (freezes the model)
        from reviewlake.models.bitlinear import pack

        torch.save(pack(model), out / "model.pt")
    else:
        torch.save(model.state_dict(), out / "model.pt")
    encoder.save_pretrained(out / "encoder")
    tokenizer.save_pretrained(out / "encoder")
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    (out / "topics.json").write_text(json.dumps(topics, indent=2))
    return out


def joint_scores(model: Any, vectors: np.ndarray, device: str = "cpu") -> dict[str, np.ndarray]:
    """What a :class:`~reviewlake.models.joint_topic.JointTopicModel` (in eval mode) makes of embeddings:
    class probabilities ``proba``, the latent ``z``, soft topic assignment ``q``, ``topic`` and ``topic_prob``."""
    import torch

    with torch.inference_mode():
        z, _, q, logits = model(torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device))
        proba = torch.softmax(logits.float(), 1).cpu().numpy()
        q_np = q.float().cpu().numpy()
    return {"proba": proba, "z": z.float().cpu().numpy(), "q": q_np, "topic": q_np.argmax(1),
            "topic_prob": q_np.max(1)}


class JointTopicPredictor:
    """Scores texts with a saved joint sentiment-topic model: sentiment, topic id, its probability and label."""

    def __init__(self, model_dir: Path, device: str = "cpu", threads: int | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from reviewlake.models.joint_topic import JointTopicModel

        if threads:
            torch.set_num_threads(threads)
        self.meta = json.loads((model_dir / "meta.json").read_text())
        self.topics = {int(t["topic_id"]): t for t in json.loads((model_dir / "topics.json").read_text())}
        m = self.meta
        self.encoder = AutoModel.from_pretrained(model_dir / "encoder", local_files_only=True).to(device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir / "encoder", local_files_only=True)
        self.model = JointTopicModel(m["dim"], m["hidden"], m["latent"], m["topics"], m["num_classes"],
                                     alpha=m["alpha"])
        self.model.load_state_dict(torch.load(model_dir / "model.pt", map_location="cpu"))
        self.device = device
        self.model.to(device).eval()

    def scores_from_embeddings(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        return joint_scores(self.model, vectors, self.device)

    def scores(self, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        from reviewlake.embeddings import sentence_embeddings

        vectors = sentence_embeddings(self.encoder, self.tokenizer, texts, self.meta["max_length"], batch_size,
                                      self.device)
        return self.scores_from_embeddings(vectors)

    def predict_frame(self, texts: pd.Series, vectors: pd.Series | None = None) -> pd.DataFrame:
        """As :meth:`MultitaskPredictor.predict_frame` (no rating or aspects), plus ``topic_id``,
        ``topic_prob`` and ``topic_label``.

        ``vectors`` (same index as ``texts``) are the texts' embeddings where already known (batch
        scoring reads them from ``tables.embeddings``); None entries are computed from the text.
        """
        def score(batch: list[str]) -> dict[str, np.ndarray]:
            if vectors is None:
                return self.scores(batch)
            given = list(vectors[has_text(texts)])  # the rows sentiment_frame scores
            missing = [i for i, v in enumerate(given) if v is None or not hasattr(v, "__len__")]
            if missing:
                from reviewlake.embeddings import sentence_embeddings

                fresh = sentence_embeddings(self.encoder, self.tokenizer, [batch[i] for i in missing],
                                            self.meta["max_length"], 64, self.device)
                for row, i in enumerate(missing):
                    given[i] = fresh[row]
            return self.scores_from_embeddings(np.stack(given).astype(np.float32))

        out, ok, s = sentiment_frame(texts, self.meta["num_classes"], score)
        out["topic_id"] = pd.Series(pd.NA, index=texts.index, dtype="Int64")
        out["topic_prob"] = np.nan
        out["topic_label"] = None
        if s is not None:
            out.loc[ok, "topic_id"] = s["topic"].astype(int)
            out.loc[ok, "topic_prob"] = s["topic_prob"]
            out.loc[ok, "topic_label"] = [self.topics.get(int(t), {}).get("label", f"topic {t}") for t in s["topic"]]
        return out


class BilstmPredictor:
    """Scores texts with a saved BiLSTM (its vocabulary in ``vocab.json``): sentiment only."""

    def __init__(self, model_dir: Path, device: str = "cpu", threads: int | None = None) -> None:
        import torch

        from reviewlake.models.bilstm import BiLSTMClassifier

        if threads:
            torch.set_num_threads(threads)
        self.model_dir = model_dir
        self.meta = json.loads((model_dir / "meta.json").read_text())
        self.index = {w: i + 2 for i, w in enumerate(json.loads((model_dir / "vocab.json").read_text()))}
        m = self.meta
        self.model = BiLSTMClassifier(m["vocab_size"], m["embedding"], list(m["hidden"]), m["num_classes"])
        self.model.load_state_dict(torch.load(model_dir / "model.pt", map_location="cpu"))
        self.device = device
        self.model.to(device).eval()

    def scores(self, texts: list[str], batch_size: int = 256) -> dict[str, np.ndarray]:
        import torch

        from reviewlake.models.bilstm import encode_words, words
        from reviewlake.training.bilstm import pad_batch

        ids = [np.asarray(encode_words(words(t), self.index, self.meta["max_length"])) for t in texts]
        proba = np.zeros((len(texts), self.meta["num_classes"]), np.float32)
        order = np.argsort([len(x) for x in ids], kind="stable")
        with torch.inference_mode():
            for b in range(0, len(ids), batch_size):
                rows = order[b:b + batch_size]
                batch, lengths = pad_batch([ids[i] for i in rows])
                proba[rows] = torch.softmax(self.model(batch.to(self.device), lengths), 1).float().cpu().numpy()
        return {"proba": proba}

    def predict_frame(self, texts: pd.Series) -> pd.DataFrame:
        """As :meth:`MultitaskPredictor.predict_frame`, without rating or aspects."""
        return sentiment_frame(texts, self.meta["num_classes"], self.scores)[0]


class ModelFolderPyfunc(PythonModel):
    """``mlflow.pyfunc`` face of a saved model folder: a frame with a ``text`` column in, the
    predictor's ``predict_frame`` out. Subclasses name the predictor."""

    predictor_class: Any = None

    def load_context(self, context: Any) -> None:
        self.path = Path(context.artifacts["model"])
        self.predictor = self.predictor_class(self.path)

    def use_device(self, device: str) -> None:
        """Score on ``device`` (``cuda:0``) from now on (an int8 model stays on the CPU)."""
        self.predictor = self.predictor_class(self.path, device=device)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if "text" not in model_input.columns:
            raise ValueError("the input needs a 'text' column")
        return self.predict_input(model_input)

    def predict_input(self, model_input: pd.DataFrame) -> pd.DataFrame:
        return self.predictor.predict_frame(model_input["text"])


class MultitaskPyfunc(ModelFolderPyfunc):
    """A multi-task (or its int8) model folder."""

    predictor_class = MultitaskPredictor


class JointTopicPyfunc(ModelFolderPyfunc):
    """A joint sentiment-topic model folder; an ``embedding`` column, where given, saves encoding the text."""

    predictor_class = JointTopicPredictor

    def predict_input(self, model_input: pd.DataFrame) -> pd.DataFrame:
        return self.predictor.predict_frame(model_input["text"], model_input.get("embedding"))


class BilstmPyfunc(ModelFolderPyfunc):
    """A BiLSTM model folder."""

    predictor_class = BilstmPredictor


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


def clean_texts(spark: Any, cfg: Any, texts: pd.Series) -> pd.Series:
    """``texts`` cleaned by silver's Spark rules (what the models were trained on), same index."""
    from reviewlake.preprocess import add_clean_text

    frame = spark.createDataFrame(pd.DataFrame({"_i": range(len(texts)), "text": texts.fillna("").astype(str)
                                                .tolist()}).assign(title=None), "_i long, text string, title string")
    rows = add_clean_text(frame, cfg.preprocess.cleaning).select("_i", "text_clean").collect()
    cleaned = dict((r["_i"], r["text_clean"]) for r in rows)
    return pd.Series([cleaned[i] for i in range(len(texts))], index=texts.index)


def predict_texts(spark: Any, cfg: Any, model: Any, texts: pd.Series) -> pd.DataFrame:
    """Predictions of a loaded pyfunc ``model`` for raw ``texts``."""
    return model.predict(pd.DataFrame({"text": clean_texts(spark, cfg, texts)}, index=texts.index))


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
    added = ["status", "sentiment", "sentiment_prob", "rating_pred", "aspects"]
    topics = isinstance(model.unwrap_python_model(), JointTopicPyfunc)
    if topics:
        added += ["topic_id", "topic_prob", "topic_label"]
    rows = sum(1 for _ in open(source, "rb")) - 1
    if rows <= spark_above:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
        out = predict_texts(spark, cfg, model, frame["text"])[added]
        pd.concat([frame, out], axis=1).to_csv(target, index=False)
        return len(frame)
    from pyspark.sql import functions as F

    from reviewlake.preprocess import add_clean_text

    df = spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(str(source))
    cleaned = add_clean_text(df.withColumn("title", F.lit(None).cast("string")), cfg.preprocess.cleaning)
    schema = ", ".join(f"`{c}` string" for c in df.columns) + (
        ", status string, sentiment string, sentiment_prob double, rating_pred double, aspects string") + (
        ", topic_id int, topic_prob double, topic_label string" if topics else "")
    uri = registry.tracking_uri(cfg)
    threads = cfg.score.torch_threads
    columns = list(df.columns)  # the closure below ships to executors: plain values only, no DataFrame

    def score(batches: Any) -> Any:
        from reviewlake.score import worker_model

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
