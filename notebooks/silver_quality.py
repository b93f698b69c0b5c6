# %% [markdown]
# # reviews_silver: data quality
#
# Runs top to bottom as a script (`.venv/bin/python notebooks/silver_quality.py`) or as a notebook
# (percent format: Jupyter with jupytext, VS Code, PyCharm). It reads the tables that
# `./spark-submit.sh preprocess` (or `make demo`) wrote, from a new session.

# %%
import sys
from pathlib import Path

sys.path.insert(0, str(Path.cwd() / "lib") if (Path.cwd() / "lib").exists() else str(Path(__file__).resolve().parents[1] / "lib"))

from reviewlake.config import load_config  # noqa: E402
from reviewlake.quality import plot_quality, rating_vs_sentiment  # noqa: E402
from reviewlake.spark import get_spark  # noqa: E402

cfg = load_config()
spark = get_spark(cfg, "reviewlake notebook silver_quality")
silver = spark.table(cfg.table("silver"))

# %% [markdown]
# ## Where the rows went
# The last preprocess runs: bronze version read, rows in and out, and what each step removed.

# %%
spark.table(cfg.table("preprocess_runs")).orderBy("finished_at").select(
    "finished_at", "bronze_version", "rows_in", "rows_out", "removed", "splits").show(truncate=False)

# %% [markdown]
# ## Classes per split, and the class weights training will use

# %%
silver.groupBy("split", "sentiment_binary", "sentiment_3").count().orderBy("split", "sentiment_3").show(50)
spark.table(cfg.table("class_weights")).show()

# %% [markdown]
# ## Rating against sentiment label
# Chi-square test of independence on rows that have both (the multi-task seed reported
# chi2 = 354, p < 0.001 on its data; on data whose label is derived from the rating it is large by
# construction).

# %%
print(rating_vs_sentiment(silver))

# %% [markdown]
# ## The summary plot
# Classes, ratings, text lengths per class and aspect frequencies, from the `silver_quality` table.

# %%
rows = [tuple(r) for r in spark.table(cfg.table("silver_quality")).collect()]
png = plot_quality(rows, cfg, cfg.paths.reports / "silver_quality_notebook.png")
print(png)
