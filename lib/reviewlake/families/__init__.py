"""The model families: ``FAMILIES`` maps each model type to its :class:`~reviewlake.families.base.Family`.

Every module of this package but ``base`` is a family module that declares ``FAMILIES`` (a tuple of
records); they are imported the first time the mapping is read, so a job that only parses its
options or reads tables imports no torch. Adding a family is a new module here (and its settings
section in the config); a test or a plugin may also :meth:`~Families.register` one at run time.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from reviewlake.families.base import Family

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from reviewlake.config import Config
    from reviewlake.training.stage import TrainReport, TrainRequest


class Families(Mapping[str, Family]):
    """Model type -> family, from the family modules of this package (imported on first read)."""

    def __init__(self) -> None:
        self._found: dict[str, Family] | None = None

    def _families(self) -> dict[str, Family]:
        if self._found is None:
            found: dict[str, Family] = {}
            for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base"):
                for declared in importlib.import_module(f"{__name__}.{module}").FAMILIES:
                    if declared.model_type in found:
                        raise ValueError(f"model type '{declared.model_type}' is declared twice ({module})")
                    found[declared.model_type] = declared
            self._found = found
        return self._found

    def __getitem__(self, model_type: str) -> Family:
        return self._families()[model_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._families())

    def __len__(self) -> int:
        return len(self._families())

    def register(self, declared: Family) -> None:
        """Add a family at run time (a test's, a plugin's); a model type is registered once."""
        if declared.model_type in self._families():
            raise ValueError(f"model type '{declared.model_type}' is already a family")
        self._families()[declared.model_type] = declared

    def unregister(self, model_type: str) -> None:
        self._families().pop(model_type, None)


FAMILIES = Families()


def model_types() -> list[str]:
    """Every model type, in the order the family modules declare them."""
    return list(FAMILIES)


def family(model_type: str) -> Family:
    """The family of ``model_type``, or a one-line error listing the known ones."""
    if model_type not in FAMILIES:
        raise ValueError(f"unknown model '{model_type}'; one of: {', '.join(FAMILIES)}")
    return FAMILIES[model_type]


def train(spark: "SparkSession", cfg: "Config", request: "TrainRequest") -> "TrainReport":
    """Run one training request through its family: snapshot, train, evaluate per source, register."""
    chosen = family(request.model)
    if request.candidate is not None and not chosen.candidates:
        raise ValueError(f"--candidate applies to {', '.join(t for t, f in FAMILIES.items() if f.candidates)}, "
                         f"not {request.model}")
    return chosen.train(spark, resolved(cfg, request.candidate), request)


def resolved(cfg: "Config", candidate: str | None) -> "Config":
    """``cfg`` with the training settings of ``candidate`` (see ``TrainSettings.candidate``)."""
    return cfg.model_copy(update={"train": cfg.train.candidate(candidate)})


def columns_of(model: Any) -> tuple[str, ...]:
    """The columns the loaded pyfunc ``model`` predicts (from its version's ``model_type``)."""
    model_type = (getattr(getattr(model, "metadata", None), "metadata", None) or {}).get("model_type")
    if model_type is None:  # registered before the metadata said it: the model folder's meta.json does
        python_model = model.unwrap_python_model()
        model_type = (getattr(python_model, "meta", None) or {}).get("model_type", "multitask")
    return family(model_type).columns


def train_fingerprint(cfg: "Config", model_type: str) -> str:
    """A hash of the training settings ``model_type`` depends on: a version trained with others is not up
    to date. Every family's own section (``Family.section``) counts for that family only; a family with
    ``fingerprint_all`` hashes every other setting too."""
    own = FAMILIES[model_type].section
    others = {f.section for t, f in FAMILIES.items() if f.section and t != model_type and f.section != own
              and not f.fingerprint_all}
    settings = cfg.train.model_dump(mode="json", exclude=others)
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
