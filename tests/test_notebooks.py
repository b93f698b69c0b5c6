"""The notebooks run top to bottom (nbclient, the environment's own kernel) on the tables the tests built:
the training tests' bronze, silver, metrics and registry for 01 and 02, the pipeline test's gold tables for
03 (one kernel, as a user runs one after the other). Their committed outputs come from the bundled
default (`make demo`)."""

from __future__ import annotations

from typing import Any

import nbformat
from nbclient import NotebookClient

from reviewlake.config import Config
from tests.conftest import REPO


def run(notebooks_overrides: list[tuple[str, list[str]]]) -> list[Any]:
    """Execute the notebooks one after the other in one kernel (one Python, one Spark session), each with
    its own ``REVIEWLAKE_SET`` overrides, the namespace cleared between them (``%reset -f``): what one
    defines, the next cannot use unseen."""
    notebooks = [nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4) for name, _ in notebooks_overrides]
    together = nbformat.v4.new_notebook(metadata=notebooks[0].metadata)
    for notebook, (_, overrides) in zip(notebooks, notebooks_overrides):  # its settings, its cells, a reset
        setting = f"import os\nos.environ['REVIEWLAKE_SET'] = {';'.join(overrides)!r}"
        together.cells += [nbformat.v4.new_code_cell(setting), *notebook.cells, nbformat.v4.new_code_cell("%reset -f")]
    NotebookClient(together, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    at = 0
    for notebook in notebooks:  # the executed cells back to their notebook
        notebook.cells = together.cells[at + 1:at + 1 + len(notebook.cells)]
        at += len(notebook.cells) + 2
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


def test_the_notebooks_run_one_after_the_other(train_silver: Config, t_multitask: Any, t_joint: Any,
                                              t_pipeline: tuple[Config, Any]) -> None:
    """01 and 02 on the training tests' tables and registry, then 03 on the pipeline test's gold tables:
    one kernel, as a user runs one after the other."""
    pipeline_cfg, _ = t_pipeline
    explore, models, topics = run([("01_explore", [*paths(train_silver), "registry.prefix=t-"]),
                                   ("02_models", [*paths(train_silver), "registry.prefix=t-"]),
                                   ("03_topics", [*paths(pipeline_cfg), "registry.prefix=t-"])])
    text, images = outputs(explore)
    assert "amazon-tsv" in text and "chi2" in text and images == 2, text[-3000:]
    text, images = outputs(models)
    assert "t-multitask" in text and "t-joint" in text and "accuracy" in text
    assert images >= 3 and "confusion matrices" in text, text[-3000:]
    text, images = outputs(topics)
    assert images == 2 and "t-joint/1" in text, text[-3000:]
    assert "12 example reviews" in text  # 3 per topic
