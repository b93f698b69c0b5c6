"""The prediction service and results page: ``./spark-submit.sh serve``.

FastAPI on uvicorn, loopback by default (``serve.host``, ``serve.port``):

- ``POST /predict`` with ``{"texts": [...]}`` (or ``{"text": "..."}``) answers ``predict``'s JSON for each
  text: sentiment, confidence, rating, aspects, and the topic when a topic model is registered;
- ``POST /predict/csv`` takes a CSV upload with a ``text`` column and returns it scored (every input
  column plus ``predict --input``'s columns), for a spreadsheet: a cell that would run as a formula
  (``=``, ``+``, ``-``, ``@`` first) gets a leading ``'`` (``predict --output`` keeps the data as given);
- ``GET /`` is a page with a text box, the upload, and charts of the sentiment distribution and of the
  topic x sentiment gold table; ``GET /api/topics`` is that table as JSON;
- bad input gets a 4xx with one clear ``detail`` line: too many or too long texts, an upload that is too
  big, not UTF-8, not CSV, or without a ``text`` column.

The models are the registered champions that ``aggregate`` uses (``registry.prefix`` +
``aggregate.sentiment_model`` / ``topic_model`` at ``registry.alias``), loaded once. Texts are cleaned by
silver's Spark rules as each model version was trained with them, as in ``predict``, with a local Spark session that has no Hive catalog: the
gold table is read by path, so the service never holds the embedded metastore the jobs need.
"""

from __future__ import annotations

import html
import io
import logging
import threading
from dataclasses import dataclass
from typing import Any

import pandas as pd
from fastapi import FastAPI, File, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, model_validator
from pyspark.sql import SparkSession

from reviewlake import registry
from reviewlake.aggregate import COLOURS, stacked_shares
from reviewlake.config import Config
from reviewlake.families.base import TOPIC_COLUMNS, cleaning_of
from reviewlake.predict import as_json, clean_texts
from reviewlake.spark import table_path

log = logging.getLogger(__name__)

ADDED = ["status", "sentiment", "sentiment_prob", "rating_pred", "aspects"]
TOPIC_ADDED = list(TOPIC_COLUMNS)
# A cell starting with one of these runs as a formula when a spreadsheet opens the CSV (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class PredictRequest(BaseModel):
    """``{"texts": [...]}`` or ``{"text": "..."}``."""

    texts: list[str] | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "PredictRequest":
        if (self.texts is None) == (self.text is None):
            raise ValueError('give either "texts": [...] or "text": "..."')
        return self


@dataclass
class Models:
    """The loaded champions: ``sentiment`` always, ``topics`` when registered."""

    sentiment_ref: str
    sentiment: Any
    topics_ref: str | None
    topics: Any | None


def load_models(cfg: Config, sentiment_ref: str | None = None, topics_ref: str | None = None) -> Models:
    """Load the models the service answers with; a missing sentiment model is an error, a missing topic
    model only leaves the topic out."""
    default = f"{cfg.registry.prefix}{{}}@{cfg.registry.alias}"
    sentiment_ref = sentiment_ref or default.format(cfg.aggregate.sentiment_model)
    sentiment = registry.load(cfg, sentiment_ref)
    topics_ref = topics_ref or default.format(cfg.aggregate.topic_model)
    try:
        topics = registry.load(cfg, topics_ref)
    except ValueError as exc:
        log.warning("no topic model: %s", exc)
        topics, topics_ref = None, None
    return Models(sentiment_ref, sentiment, topics_ref, topics)


def predict_frame(spark: SparkSession, cfg: Config, models: Models, texts: pd.Series) -> pd.DataFrame:
    """``predict``'s columns for ``texts``: the sentiment model's, and the topic model's topic columns; each
    model reads the texts cleaned by the rules it was trained with."""
    def cleaned(model: Any) -> pd.DataFrame:
        return pd.DataFrame({"text": clean_texts(spark, cleaning_of(model, cfg.preprocess.cleaning), texts)},
                            index=texts.index)

    out = models.sentiment.predict(cleaned(models.sentiment))
    if models.topics is not None:
        out[TOPIC_ADDED] = models.topics.predict(cleaned(models.topics))[TOPIC_ADDED]
    return out


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that a spreadsheet would run as a formula (it starts with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return) prefixed with a single quote, as OWASP advises for CSV
    exports. The service's CSV download is for spreadsheets; ``predict --output`` keeps the data as given."""
    def escape(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value

    return frame.apply(lambda column: column.map(escape) if column.dtype == object else column)


def gold_version(cfg: Config) -> str | None:
    """The newest commit file of the topic x sentiment gold table (None before ``aggregate`` built it): the
    page, its charts and /api/topics read the table again only when it changes."""
    commits = sorted((table_path(cfg, "topic_sentiment") / "_delta_log").glob("*.json"))
    return commits[-1].name if commits else None


def gold_topics(spark: SparkSession, cfg: Config) -> pd.DataFrame | None:
    """The topic x sentiment gold table, or None before ``aggregate`` has built it."""
    path = table_path(cfg, "topic_sentiment")
    if gold_version(cfg) is None:
        return None
    columns = ["topic_id", "topic_label", "reviews", "negative", "neutral", "positive", "share_negative",
               "share_neutral", "share_positive", "mean_rating_pred", "sentiment_model", "topic_model", "built_at"]
    frame: pd.DataFrame = spark.read.format("delta").load(str(path)).select(*columns).orderBy(
        "topic_id").toPandas()
    frame["built_at"] = frame["built_at"].astype(str)
    return frame


def chart_png(topics: pd.DataFrame | None, kind: str) -> bytes:
    """A PNG of the sentiment distribution (``kind`` 'sentiment') or of the sentiment shares per topic."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    if topics is None or topics.empty:
        ax.text(0.5, 0.5, "no gold tables yet: run ./spark-submit.sh aggregate", ha="center", va="center")
        ax.set_axis_off()
    elif kind == "sentiment":
        counts = [int(topics[s].sum()) for s in COLOURS]
        ax.bar(list(COLOURS), counts, color=list(COLOURS.values()))
        for i, n in enumerate(counts):
            ax.annotate(f"{n:,}", (i, n), ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("reviews")
        ax.set_title(f"Sentiment of {sum(counts):,} scored reviews ({topics['sentiment_model'].iloc[0]})")
    else:
        labels = [f"{t}: {label}" for t, label in zip(topics["topic_id"], topics["topic_label"])]
        stacked_shares(ax, topics, labels, f"Sentiment per topic ({topics['topic_model'].iloc[0]})")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def read_upload(data: bytes, name: str, cfg: Config) -> pd.DataFrame:
    """The uploaded CSV as strings, or an HTTPException with one clear line."""
    limit = cfg.serve.max_upload_bytes
    if len(data) > limit:
        raise HTTPException(413, f"{name}: {len(data):,} bytes; uploads are limited to {limit:,} bytes "
                                 "(score larger files with ./spark-submit.sh predict --input)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"{name}: not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x}); "
                                 "save it as UTF-8") from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise HTTPException(400, f"{name}: not a CSV file ({' '.join(str(exc).split())})") from None
    if "text" not in frame.columns:
        raise HTTPException(400, f"{name}: no 'text' column (it has {list(frame.columns)})")
    if len(frame) > cfg.serve.max_upload_rows:
        raise HTTPException(413, f"{name}: {len(frame):,} rows; uploads are limited to {cfg.serve.max_upload_rows:,} "
                                 "(score larger files with ./spark-submit.sh predict --input)")
    return frame


def create_app(spark: SparkSession, cfg: Config, models: Models) -> FastAPI:
    """The service's routes over loaded ``models``; see the module docstring."""
    app = FastAPI(title="reviewlake", description="Sentiment, rating, aspects and topics of product reviews")
    lock = threading.Lock()  # one Spark cleaning + model call at a time: the models are not thread-safe
    gold: dict[str | None, pd.DataFrame | None] = {}  # the gold table, by its newest commit

    def topics_now() -> pd.DataFrame | None:
        version = gold_version(cfg)
        with lock:
            if version not in gold:
                gold.clear()
                gold[version] = gold_topics(spark, cfg)
            return gold[version]

    def check_texts(texts: list[str]) -> None:
        if not texts:
            raise HTTPException(422, '"texts" is empty: give at least one text')
        if len(texts) > cfg.serve.max_texts:
            raise HTTPException(413, f"{len(texts):,} texts; at most {cfg.serve.max_texts:,} per request")
        too_long = [i for i, t in enumerate(texts) if len(t) > cfg.serve.max_chars]
        if too_long:
            raise HTTPException(413, f"text {too_long[0]} has {len(texts[too_long[0]]):,} characters; at most "
                                     f"{cfg.serve.max_chars:,}")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "sentiment_model": models.sentiment_ref, "topic_model": models.topics_ref}

    @app.post("/predict")
    def predict(body: PredictRequest) -> Any:
        texts = body.texts if body.texts is not None else [body.text or ""]
        check_texts(texts)
        with lock:
            frame = predict_frame(spark, cfg, models, pd.Series(texts))
        answers = [{"text": t, **as_json(row)} for t, (_, row) in zip(texts, frame.iterrows())]
        return answers if body.texts is not None else answers[0]

    @app.post("/predict/csv")
    async def predict_csv(file: UploadFile = File(...)) -> Response:
        name = file.filename or "upload"
        frame = read_upload(await file.read(cfg.serve.max_upload_bytes + 1), name, cfg)
        with lock:
            out = predict_frame(spark, cfg, models, frame["text"])
        added = ADDED + (TOPIC_ADDED if models.topics is not None else [])
        scored = spreadsheet_safe(pd.concat([frame, out[added]], axis=1)).to_csv(index=False)
        stem = name.rsplit(".", 1)[0]
        return Response(scored, media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{stem}.scored.csv"'})

    @app.get("/api/topics")
    def topics() -> list[dict[str, Any]]:
        frame = topics_now()
        return [] if frame is None else frame.to_dict(orient="records")

    @app.get("/charts/{kind}.png")
    def chart(kind: str) -> Response:
        if kind not in ("sentiment", "topics"):
            raise HTTPException(404, f"no chart '{kind}'; charts: sentiment, topics")
        frame = topics_now()
        return Response(chart_png(frame, kind), media_type="image/png")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        frame = topics_now()
        return render_page(models, frame)

    return app


def render_page(models: Models, topics: pd.DataFrame | None) -> str:
    """The results page: a text box, the CSV upload, the two charts and the topic table."""
    if topics is None or topics.empty:
        table = "<p id='no-gold'>No gold tables yet: run <code>./spark-submit.sh aggregate</code>.</p>"
        built = ""
    else:
        rows = "".join(
            f"<tr><td>{int(r.topic_id)}</td><td>{html.escape(str(r.topic_label))}</td><td>{int(r.reviews):,}</td>"
            f"<td>{r.share_negative:.1%}</td><td>{r.share_neutral:.1%}</td><td>{r.share_positive:.1%}</td></tr>"
            for r in topics.itertuples())
        table = ("<table id='topics'><tr><th>topic</th><th>label</th><th>reviews</th><th>negative</th>"
                 f"<th>neutral</th><th>positive</th></tr>{rows}</table>")
        built = f" Built {html.escape(str(topics['built_at'].iloc[0]))}."
    topic_model = html.escape(models.topics_ref or "none registered")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reviewlake</title>
<style>
body {{ font-family: sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }}
textarea {{ width: 100%; height: 5rem; }} pre {{ background: #f4f4f4; padding: .8rem; min-height: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .2rem .6rem; text-align: left; }}
img {{ max-width: 100%; }} .error {{ color: #c0392b; }}
</style></head>
<body>
<h1>reviewlake</h1>
<p>Sentiment model <code>{html.escape(models.sentiment_ref)}</code>, topic model <code>{topic_model}</code>.</p>
<h2>Predict</h2>
<textarea id="text" placeholder="Write a review">The battery died after a week and support never answered.</textarea>
<button id="predict">Predict</button>
<pre id="result"></pre>
<h2>Score a CSV (a <code>text</code> column)</h2>
<input type="file" id="csv" accept=".csv,text/csv"> <button id="upload">Score file</button>
<span id="upload-status"></span>
<h2>Sentiment and topics</h2>
<p>From the gold table topic_sentiment.{built}</p>
<img id="chart-sentiment" src="/charts/sentiment.png" alt="sentiment distribution">
<img id="chart-topics" src="/charts/topics.png" alt="sentiment per topic">
{table}
<script>
document.getElementById("predict").onclick = async () => {{
  const out = document.getElementById("result");
  const answer = await fetch("/predict", {{method: "POST", headers: {{"Content-Type": "application/json"}},
    body: JSON.stringify({{text: document.getElementById("text").value}})}});
  const body = await answer.json();
  out.className = answer.ok ? "" : "error";
  out.textContent = answer.ok ? JSON.stringify(body, null, 2) : body.detail;
}};
document.getElementById("upload").onclick = async () => {{
  const status = document.getElementById("upload-status");
  const file = document.getElementById("csv").files[0];
  if (!file) {{ status.textContent = "choose a CSV file first"; return; }}
  const form = new FormData(); form.append("file", file);
  const answer = await fetch("/predict/csv", {{method: "POST", body: form}});
  if (!answer.ok) {{ status.className = "error"; status.textContent = (await answer.json()).detail; return; }}
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await answer.blob());
  link.download = file.name.replace(/\\.csv$/, "") + ".scored.csv";
  document.body.appendChild(link); link.click(); link.remove();
  status.className = ""; status.textContent = "scored: " + link.download;
}};
</script>
</body></html>"""
