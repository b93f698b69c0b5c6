"""``pipeline``: every stage in order under one run id, each skipping the work already done.

1. ingest each of ``pipeline.inputs``, skipping an input whose files did not change since a finished run;
2. preprocess bronze into silver (skipped when bronze and the config are unchanged);
3. train the model types in ``pipeline.train``, only when asked (``--train``; weekly in the schedule);
4. score silver with the sentiment and topic models of ``aggregate`` at ``registry.alias`` (only the
   reviews without a score of that version);
5. aggregate the gold tables (skipped when every gold table was built from the current scores, silver and
   model versions).

Each stage appends a row to ``tables.pipeline_runs`` (run id, stage, status, seconds, what it did, rows
per table), so a scheduler's history and a person's question "what did last night's run do" are one
query away.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from reviewlake import tables
from reviewlake.aggregate import GOLD, aggregate, stale_gold
from reviewlake.config import Config, ConfigError
from reviewlake.ingest import ingest
from reviewlake.preprocess import preprocess
from reviewlake.registry import ModelVersion, resolve
from reviewlake.score import score_reviews
from reviewlake.training.backends import BACKENDS
from reviewlake.families import FAMILIES, family, train
from reviewlake.training.stage import TrainRequest

log = logging.getLogger(__name__)

STAGES = ("ingest", "preprocess", "train", "score", "aggregate")

PIPELINE_RUNS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType(), False),
    T.StructField("stage", T.StringType(), False),
    T.StructField("status", T.StringType(), False),        # done | skipped | failed
    T.StructField("started_at", T.TimestampType(), False),
    T.StructField("seconds", T.DoubleType(), False),
    T.StructField("detail", T.StringType(), True),
    T.StructField("rows", T.MapType(T.StringType(), T.LongType()), True),   # table -> rows after the stage
])


@dataclass
class StageResult:
    stage: str
    status: str
    seconds: float
    detail: str
    rows: dict[str, int] = field(default_factory=dict)


@dataclass
class PipelineReport:
    run_id: str
    stages: list[StageResult]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def summary(self) -> str:
        """The stages as a table: status, seconds, rows per table, and what each did."""
        lines = [f"pipeline {self.run_id}: {len(self.stages)} stages in {self.seconds:.1f} s",
                 f"  {'stage':<11}{'status':<9}{'seconds':>9}  rows per table"]
        for s in self.stages:
            rows = ", ".join(f"{t} {n:,}" for t, n in s.rows.items()) or "-"
            lines.append(f"  {s.stage:<11}{s.status:<9}{s.seconds:>9.1f}  {rows}")
            lines += [f"      {line}" for line in s.detail.splitlines()]
        return "\n".join(lines)


@dataclass(frozen=True)
class PipelineRequest:
    """What one pipeline run was asked to do: the train stage's options, and stages to leave out."""

    train: bool = False
    models: tuple[str, ...] = ()           # MODEL or MODEL:BACKEND; default: pipeline.train
    backend: str | None = None
    num_proc: int | None = None
    local_mode: bool = False
    use_gpu: bool = False
    epochs: int | None = None
    max_rows: int | None = None
    skip: tuple[str, ...] = ()
    run_id: str | None = None              # a scheduler's run id; default: time + random


def _rows(spark: SparkSession, cfg: Config, *roles: str) -> dict[str, int]:
    """Rows of each table of ``roles`` that exists."""
    out: dict[str, int] = {}
    for role in roles:
        name = cfg.table(role)
        if spark.catalog.tableExists(name):
            out[getattr(cfg.tables, role)] = spark.table(name).count()
    return out


def _record(spark: SparkSession, cfg: Config, run_id: str, started: datetime, result: StageResult) -> None:
    tables.ensure_table(spark, cfg.table("pipeline_runs"), PIPELINE_RUNS_SCHEMA, role="pipeline_runs")
    spark.createDataFrame([(run_id, result.stage, result.status, started, result.seconds, result.detail,
                            result.rows)], PIPELINE_RUNS_SCHEMA).write.format("delta").mode("append").saveAsTable(
        cfg.table("pipeline_runs"))


def _ingest(spark: SparkSession, cfg: Config, request: PipelineRequest) -> StageResult:
    if not cfg.pipeline.inputs:
        return StageResult("ingest", "skipped", 0.0, "no inputs in pipeline.inputs")
    lines, read = [], 0
    for item in cfg.pipeline.inputs:
        report = ingest(spark, cfg, item.format, item.path, item.source, item.category, skip_unchanged=True)
        read += 0 if report.unchanged else 1
        lines.append(report.summary())
    status = "done" if read else "skipped"
    return StageResult("ingest", status, 0.0, "\n".join(lines), _rows(spark, cfg, "bronze", "quarantine"))


def _preprocess(spark: SparkSession, cfg: Config, request: PipelineRequest) -> StageResult:
    if not spark.catalog.tableExists(cfg.table("bronze")):
        return StageResult("preprocess", "skipped", 0.0, f"no {cfg.table('bronze')} table yet: nothing ingested")
    report = preprocess(spark, cfg)
    return StageResult("preprocess", "skipped" if report.skipped else "done", 0.0, report.summary(),
                       _rows(spark, cfg, "silver"))


def _train(spark: SparkSession, cfg: Config, request: PipelineRequest) -> StageResult:
    if not request.train:
        return StageResult("train", "skipped", 0.0, "not asked (pipeline --train)")
    lines = []
    num_proc = request.num_proc or cfg.train.num_proc
    for model, backend in _models(cfg, request):
        report = train(spark, cfg, TrainRequest(
            model=model, backend=backend, num_proc=num_proc,
            local_mode=request.local_mode or cfg.train.local_mode, use_gpu=request.use_gpu or cfg.train.use_gpu,
            epochs=request.epochs, max_rows=request.max_rows, name=f"{cfg.registry.prefix}{model}"))
        launched = family(model).launcher or f"{backend} x{num_proc}"
        lines.append(f"{launched}: {report.summary()}")
    return StageResult("train", "done", 0.0, "\n".join(lines), _rows(spark, cfg, "model_metrics"))


def _champions(cfg: Config) -> tuple[dict[str, ModelVersion], list[str]]:
    """The models score and aggregate use, and a line for each that is not registered."""
    found, missing = {}, []
    for role, model in (("sentiment", cfg.aggregate.sentiment_model), ("topics", cfg.aggregate.topic_model)):
        reference = f"{cfg.registry.prefix}{model}@{cfg.registry.alias}"
        try:
            found[role] = resolve(cfg, reference)
        except ValueError as exc:
            missing.append(f"{reference}: {exc}")
    return found, missing


def _score(spark: SparkSession, cfg: Config, request: PipelineRequest) -> StageResult:
    models, missing = _champions(cfg)
    if not spark.catalog.tableExists(cfg.table("silver")):
        return StageResult("score", "skipped", 0.0, f"no {cfg.table('silver')} table yet")
    lines = [f"not registered, not scored: {m}" for m in missing]
    scored = 0
    for model in {m.reference: m for m in models.values()}.values():
        report = score_reviews(spark, cfg, model.reference)
        scored += report.scored
        lines.append(report.summary())
    status = "done" if scored else "skipped"
    return StageResult("score", status, 0.0, "\n".join(lines), _rows(spark, cfg, "scores"))


def _aggregate(spark: SparkSession, cfg: Config, request: PipelineRequest) -> StageResult:
    models, missing = _champions(cfg)
    if missing or not spark.catalog.tableExists(cfg.table("scores")):
        why = "; ".join(missing) or f"no {cfg.table('scores')} table yet"
        return StageResult("aggregate", "skipped", 0.0, f"nothing to aggregate: {why}")
    stale = stale_gold(spark, cfg, models["sentiment"], models["topics"])
    if not stale:
        return StageResult("aggregate", "skipped", 0.0, "every gold table is built from the current scores, "
                           "silver and models", _rows(spark, cfg, *GOLD))
    report = aggregate(spark, cfg, models["sentiment"], models["topics"])
    return StageResult("aggregate", "done", 0.0, report.summary(), _rows(spark, cfg, *GOLD))


_STAGE_FUNCTIONS: dict[str, Callable[[SparkSession, Config, PipelineRequest], StageResult]] = {
    "ingest": _ingest, "preprocess": _preprocess, "train": _train, "score": _score, "aggregate": _aggregate}


def _models(cfg: Config, request: PipelineRequest) -> list[tuple[str, str]]:
    """(model type, backend) of each model to train: ``MODEL:BACKEND`` names its own backend, a bare
    ``MODEL`` takes ``--backend`` or ``train.backend``."""
    out = []
    for item in request.models or tuple(cfg.pipeline.train):
        model, _, backend = item.partition(":")
        out.append((model, backend or request.backend or cfg.train.backend))
    return out


def check_request(cfg: Config, request: PipelineRequest) -> None:
    """Fail before Spark starts on an unknown stage, model type or backend."""
    unknown = [s for s in request.skip if s not in STAGES]
    if unknown:
        raise ConfigError(f"pipeline --skip {','.join(unknown)}: unknown stage; stages: {', '.join(STAGES)}")
    models = _models(cfg, request)
    bad = [m for m, _ in models if m not in FAMILIES]
    if bad:
        raise ConfigError(f"pipeline: unknown model type(s) {', '.join(bad)} to train; one of: {', '.join(FAMILIES)}")
    bad = [f"{m}:{b}" for m, b in models if b not in BACKENDS]
    if bad:
        raise ConfigError(f"pipeline: unknown backend in {', '.join(bad)}; one of: {', '.join(BACKENDS)}")
    for item in request.models:
        model, named, _ = item.partition(":")
        launcher = family(model).launcher
        if named and launcher is not None:
            raise ConfigError(f"pipeline: {item}: {model} trains with {launcher}, through no backend")


def run_pipeline(spark: SparkSession, cfg: Config, request: PipelineRequest) -> PipelineReport:
    """Run the stages in order; see the module docstring. A failing stage is recorded as failed and raised."""
    check_request(cfg, request)
    run_id = request.run_id or f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    results: list[StageResult] = []
    for stage in STAGES:
        started = datetime.now(timezone.utc)
        clock = time.perf_counter()
        spark.sparkContext.setJobGroup(f"pipeline-{run_id}", f"pipeline {run_id}: {stage}")
        if stage in request.skip:
            result = StageResult(stage, "skipped", 0.0, "left out (--skip)")
        else:
            log.info("pipeline %s: %s", run_id, stage)
            try:
                result = _STAGE_FUNCTIONS[stage](spark, cfg, request)
            except BaseException as exc:
                failed = StageResult(stage, "failed", time.perf_counter() - clock, " ".join(str(exc).split())[:1000])
                _record(spark, cfg, run_id, started, failed)
                raise
        result.seconds = time.perf_counter() - clock
        _record(spark, cfg, run_id, started, result)
        log.info("pipeline %s: %s %s in %.1f s", run_id, stage, result.status, result.seconds)
        results.append(result)
    return PipelineReport(run_id, results)

