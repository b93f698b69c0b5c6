"""MLflow: tracking runs, registering model versions, the champion alias, loading by ``NAME@ALIAS``.

The backend is a sqlite database under ``paths.mlflow`` (MLflow's file store is deprecated since
3.7) with artifacts beside it, unless ``registry.tracking_uri`` points at a shared server. Registered
names are the model types with a configurable prefix, so the demo (prefix ``demo-``) never moves a
real champion. The alias moves to a new version only when its validation macro-F1 beats the
current champion's on the same validation rows (``--promote`` forces it).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from reviewlake.config import PROJECT_ROOT, Cleaning, Config

log = logging.getLogger(__name__)

VAL_F1_TAG = "val_macro_f1"
VAL_HASH_TAG = "validation_hash"


def tracking_uri(cfg: Config) -> str:
    return cfg.registry.tracking_uri or f"sqlite:///{cfg.paths.mlflow / 'mlflow.db'}"


def configure(cfg: Config) -> MlflowClient:
    """Point MLflow at the configured tracking server / registry and make sure the experiment exists."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if not cfg.registry.tracking_uri:
        cfg.paths.mlflow.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(cfg)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    if client.get_experiment_by_name(cfg.registry.experiment) is None:
        location = None if cfg.registry.tracking_uri else (cfg.paths.mlflow / "artifacts").as_uri()
        client.create_experiment(cfg.registry.experiment, artifact_location=location)
    mlflow.set_experiment(cfg.registry.experiment)
    return client


def model_name(cfg: Config, model_type: str, name: str | None = None) -> str:
    """The registered name: ``--name`` if given, else the configured prefix + the model type."""
    return name or f"{cfg.registry.prefix}{model_type}"


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    promoted: bool
    why: str


def champion(client: MlflowClient, name: str, alias: str) -> Any | None:
    """The version holding ``alias``, or None."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def register(
    cfg: Config,
    client: MlflowClient,
    name: str,
    run_id: str,
    artifact_path: str,
    val_f1: float,
    val_hash: str,
    tags: dict[str, str],
    promote: bool,
    champion_f1_on: Callable[[str], float] | None = None,
) -> Registered:
    """Register the run's logged model as a new version of ``name`` and decide the alias.

    ``champion_f1_on(version)`` re-scores the current champion on this run's validation rows when it
    was chosen on other rows; without it such a champion is kept unless ``promote``.
    """
    alias = cfg.registry.alias
    version = mlflow.register_model(f"runs:/{run_id}/{artifact_path}", name, tags=tags).version
    client.set_model_version_tag(name, version, VAL_F1_TAG, f"{val_f1:.6f}")
    client.set_model_version_tag(name, version, VAL_HASH_TAG, val_hash)
    current = champion(client, name, alias)
    if promote:
        promoted, why = True, "--promote"
    elif current is None:
        promoted, why = True, "no champion yet"
    else:
        same_rows = current.tags.get(VAL_HASH_TAG) == val_hash
        if same_rows:
            theirs = float(current.tags.get(VAL_F1_TAG, "-1"))
        elif champion_f1_on is not None:
            theirs = champion_f1_on(current.version)
        else:
            theirs = float("inf")
        promoted = round(val_f1, 6) > round(theirs, 6)  # as the tag stores it: a tie keeps the champion
        why = (f"validation macro-F1 {val_f1:.4f} vs champion v{current.version} {theirs:.4f}"
               f"{'' if same_rows else ' (champion re-scored on these rows)'}")
    if promoted:
        client.set_registered_model_alias(name, alias, version)
    log.info("%s v%s registered; %s %s (%s)", name, version, alias, "moved to it" if promoted else "kept", why)
    return Registered(name, str(version), run_id, promoted, why)


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version, as batch scoring keys its scores."""

    name: str
    version: str
    model_type: str
    encoder: str | None = None    # the encoder it was trained with (tag), for stored embeddings

    @property
    def reference(self) -> str:
        return f"{self.name}/{self.version}"


def _unknown(cfg: Config, client: MlflowClient, reference: str) -> ValueError:
    known = ", ".join(sorted(m.name for m in client.search_registered_models())) or "none"
    return ValueError(f"model {reference} not found in the registry at {tracking_uri(cfg)} "
                      f"(registered: {known}); train it first: ./spark-submit.sh train --model ...")


def find_version(cfg: Config, reference: str) -> Any:
    """MLflow's ``ModelVersion`` that ``NAME@ALIAS`` points at now, or ``NAME/VERSION``; one-line errors
    otherwise."""
    client = configure(cfg)
    if "@" in reference:
        name, alias = reference.split("@", 1)
        found = champion(client, name, alias)
    elif "/" in reference:
        name, version = reference.rsplit("/", 1)
        try:
            found = client.get_model_version(name, version)
        except MlflowException:
            found = None
    else:
        raise ValueError(f"model reference '{reference}': give NAME@ALIAS (multitask@champion) or NAME/VERSION")
    if found is None:
        raise _unknown(cfg, client, reference)
    return found


def resolve(cfg: Config, reference: str) -> ModelVersion:
    """:func:`find_version` as the :class:`ModelVersion` batch scoring keys its scores by."""
    found = find_version(cfg, reference)
    model_type = found.tags.get("model_type")
    if not model_type:
        raise ValueError(f"model {reference} (v{found.version}) has no model_type tag; it was not registered by "
                         "./spark-submit.sh train")
    return ModelVersion(found.name, str(found.version), model_type, found.tags.get("encoder"))


def load(cfg: Config, reference: str) -> Any:
    """``mlflow.pyfunc`` model for ``NAME@ALIAS`` or ``NAME/VERSION``, with a one-line error if unknown."""
    configure(cfg)
    uri = f"models:/{reference}"
    try:
        return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise _unknown(cfg, MlflowClient(), reference) from exc


def log_figures(splits: dict[str, list[tuple[str, str, float]]]) -> None:
    """Log ``(source, metric, value)`` rows per split into the active MLflow run as ``split.source.metric``
    (one batched call)."""
    mlflow.log_metrics({f"{split}.{source}.{metric}": value for split, rows in splits.items()
                        for source, metric, value in rows})


def code_paths() -> list[str]:
    """The library, shipped inside each model so it loads in any process."""
    return [str(PROJECT_ROOT / "lib" / "reviewlake") if (PROJECT_ROOT / "lib" / "reviewlake").is_dir()
            else str(Path(__file__).parent)]


def saved_cleaning(cfg: Config, reference: str) -> Cleaning | None:
    """The cleaning rules version ``reference`` was trained with (its MLflow model metadata), without
    loading the model; None for a version registered before versions carried them."""
    configure(cfg)
    uri = f"models:/{reference}"
    try:
        info = mlflow.models.get_model_info(uri)
    except MlflowException as exc:
        raise _unknown(cfg, MlflowClient(), reference) from exc
    saved = (info.metadata or {}).get("cleaning")
    return Cleaning.model_validate(saved) if saved is not None else None


def task_device() -> str:
    """``cuda:N`` for the GPU Spark assigned to the running task, else ``cpu``."""
    from pyspark import TaskContext

    context = TaskContext.get()
    gpus = context.resources().get("gpu") if context is not None else None
    if gpus is None or not gpus.addresses:
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(f"Spark gave this task GPU {gpus.addresses[0]} but torch sees no CUDA device; "
                           "check the executor's CUDA install or turn spark.gpu.enabled off")
    return f"cuda:{gpus.addresses[0]}"


# The model each Python worker loaded, by (tracking URI, model version, device): one at a time.
_LOADED: dict[tuple[str, str, str], Any] = {}


def worker_model(tracking_uri: str, reference: str, threads: int) -> Any:
    """The pyfunc of ``reference`` (``NAME/VERSION``), loaded once per Python worker and device."""
    device = task_device()
    key = (tracking_uri, reference, device)
    if key not in _LOADED:
        import mlflow
        import torch

        torch.set_num_threads(threads)
        # Both: the registry URI would otherwise come from MLFLOW_REGISTRY_URI where the worker's environment
        # has one (mlflow.set_registry_uri exports it to child processes), another registry than this one.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        _LOADED.clear()
        model = mlflow.pyfunc.load_model(f"models:/{reference}")
        if device != "cpu":
            model.unwrap_python_model().use_device(device)
        _LOADED[key] = model
        log.info("loaded %s on %s", reference, device)
    return _LOADED[key]
