"""The notebooks run top to bottom (nbclient, the environment's own kernel) on the tables the tests built:
the training tests' bronze, silver, metrics and registry for 01 and 02 (one kernel, as a user runs one
after the other), the pipeline test's gold tables for 03. Their committed outputs come from the bundled
default (`make demo`)."""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from reviewlake.config import Config
from tests.conftest import REPO


def run(names: list[str], overrides: list[str], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Execute the notebooks ``names`` one after the other in one kernel (one Python, one Spark session),
    its namespace cleared between them (``%reset -f``): what one defines, the next cannot use unseen."""
    monkeypatch.setenv("REVIEWLAKE_SET", ";".join(overrides))
    notebooks = [nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4) for name in names]
    together = nbformat.v4.new_notebook(metadata=notebooks[0].metadata)
    for notebook in notebooks:  # each notebook's cells, then a reset
        together.cells += [*notebook.cells, nbformat.v4.new_code_cell("%reset -f")]
    NotebookClient(together, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    at = 0
    for notebook in notebooks:  # the executed cells back to their notebook
        notebook.cells = together.cells[at:at + len(notebook.cells)]
        at += len(notebook.cells) + 1
    return notebooks


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


def test_explore_and_models_notebooks(train_silver: Config, t_multitask: Any, t_joint: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    explore, models = run(["01_explore", "02_models"], [*paths(train_silver), "registry.prefix=t-"], monkeypatch)
    text, images = outputs(explore)
    assert "amazon-tsv" in text and "chi2" in text and images == 2, text[-3000:]
    text, images = outputs(models)
    assert "t-multitask" in text and "t-joint" in text and "accuracy" in text
    assert images >= 3 and "confusion matrices" in text, text[-3000:]


def test_topics_notebook(t_pipeline: tuple[Config, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _ = t_pipeline
    [topics] = run(["03_topics"], [*paths(cfg), "registry.prefix=t-"], monkeypatch)
    text, images = outputs(topics)
    assert images == 2 and "t-joint/1" in text, text[-3000:]
    assert "12 example reviews" in text  # 3 per topic
