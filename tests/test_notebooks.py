"""The notebooks run top to bottom (nbclient, the environment's own kernel) on the tables the tests built:
the training tests' bronze, silver, metrics and registry for 01 and 02, the pipeline test's gold tables
for 03. Their committed outputs come from the bundled default (`make demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from reviewlake.config import Config
from tests.conftest import REPO


def run(name: str, overrides: list[str], home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("REVIEWLAKE_SET", ";".join(overrides))
    notebook = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    return notebook


def outputs(notebook: Any) -> tuple[str, int]:
    """All text the notebook printed or displayed, and how many figures it drew."""
    text, images = [], 0
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
            images += "image/png" in out.get("data", {})
    return "\n".join(text), images


def paths(cfg: Config) -> list[str]:
    return [f"paths.warehouse={cfg.paths.warehouse}", f"paths.mlflow={cfg.paths.mlflow}", f"database={cfg.database}",
            f"paths.metastore={cfg.paths.metastore}"]


def test_explore_and_models_notebooks(train_silver: Config, t_multitask: Any, t_joint: Any, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    explore = run("01_explore", paths(train_silver), tmp_path, monkeypatch)
    text, images = outputs(explore)
    assert "amazon-tsv" in text and "chi2" in text and images == 2, text[-3000:]
    models = run("02_models", [*paths(train_silver), "registry.prefix=t-"], tmp_path, monkeypatch)
    text, images = outputs(models)
    assert "t-multitask" in text and "t-joint" in text and "accuracy" in text
    assert images >= 3 and "confusion matrices" in text, text[-3000:]


def test_topics_notebook(t_pipeline: tuple[Config, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _ = t_pipeline
    topics = run("03_topics", [*paths(cfg), "registry.prefix=t-"], tmp_path, monkeypatch)
    text, images = outputs(topics)
    assert images == 2 and "t-joint/1" in text, text[-3000:]
    assert "12 example reviews" in text  # 3 per topic
