"""The data-quality summary of silver: a table any SQL session can query, and a PNG for people.

Class and rating distributions, text-length histograms per sentiment class, aspect frequencies, and
the chi-square test of independence of rating and binary sentiment label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.stats import chi2_contingency

from reviewlake import tables
from reviewlake.config import Config
from reviewlake.preprocess import SENTIMENT_3, SENTIMENT_BINARY

log = logging.getLogger(__name__)

QUALITY_SCHEMA = "metric string, grp string, key string, value double"


@dataclass(frozen=True)
class ChiSquare:
    chi2: float
    p_value: float
    dof: int
    rows: int


def rating_vs_sentiment(silver: DataFrame) -> ChiSquare | None:
    """Chi-square test of rating (1-5) against ``sentiment_binary`` on rows that have both."""
    cells = (silver.where(F.col("rating").isNotNull() & F.col("sentiment_binary").isNotNull())
             .groupBy("rating", "sentiment_binary").count().collect())
    ratings = sorted({r["rating"] for r in cells})
    classes = sorted({r["sentiment_binary"] for r in cells})
    if len(ratings) < 2 or len(classes) < 2:
        return None
    table = [[0] * len(classes) for _ in ratings]
    for r in cells:
        table[ratings.index(r["rating"])][classes.index(r["sentiment_binary"])] = r["count"]
    chi2, p, dof, _ = chi2_contingency(table)
    return ChiSquare(float(chi2), float(p), int(dof), sum(r["count"] for r in cells))


def _bin_label(bins: list[int], i: int) -> str:
    return f"{bins[i]}-{bins[i + 1]}"


def quality_rows(silver: DataFrame, cfg: Config) -> list[tuple[str, str, str, float]]:
    """Every figure of the summary as (metric, group, key, value) rows."""
    rows: list[tuple[str, str, str, float]] = []
    for scheme, names in (("sentiment_binary", SENTIMENT_BINARY), ("sentiment_3", SENTIMENT_3)):
        for r in silver.groupBy("split", scheme).count().collect():
            key = "unlabelled" if r[scheme] is None else names[r[scheme]]
            rows.append(("class_count", f"{scheme}/{r['split']}", key, float(r["count"])))
    for r in silver.where(F.col("rating").isNotNull()).groupBy("rating").count().collect():
        rows.append(("rating_count", "all", str(r["rating"]), float(r["count"])))
    bins = cfg.quality.length_bins
    bucket = F.lit(None).cast("int")
    for i in reversed(range(len(bins) - 1)):
        bucket = F.when((F.col("n_chars") >= bins[i]) & (F.col("n_chars") < bins[i + 1]), F.lit(i)).otherwise(bucket)
    for r in silver.groupBy("sentiment_binary", bucket.alias("bin")).count().collect():
        if r["bin"] is None:
            continue
        cls = "unlabelled" if r["sentiment_binary"] is None else SENTIMENT_BINARY[r["sentiment_binary"]]
        rows.append(("length_hist", cls, _bin_label(bins, r["bin"]), float(r["count"])))
    aspects = list(cfg.preprocess.labels.aspects)
    sums = silver.select(*[F.sum(F.col("aspects")[i]).alias(f"a{i}") for i in range(len(aspects))],
                         F.count("*").alias("n")).first()
    assert sums is not None
    for i, name in enumerate(aspects):
        rows.append(("aspect_count", "all", name, float(sums[f"a{i}"] or 0)))
    rows.append(("rows", "all", "silver", float(sums["n"])))
    test = rating_vs_sentiment(silver)
    if test is not None:
        rows += [("chi2_rating_vs_sentiment", "all", "chi2", test.chi2),
                 ("chi2_rating_vs_sentiment", "all", "p_value", test.p_value),
                 ("chi2_rating_vs_sentiment", "all", "dof", float(test.dof)),
                 ("chi2_rating_vs_sentiment", "all", "rows", float(test.rows))]
    return rows


def plot_quality(rows: list[tuple[str, str, str, float]], cfg: Config, out: Path) -> Path:
    """Draw the summary: classes, ratings, lengths per class, aspects."""
    def pick(metric: str) -> list[tuple[str, str, float]]:
        return [(g, k, v) for m, g, k, v in rows if m == metric]

    fig = Figure(figsize=(13, 9))
    axes = fig.subplots(2, 2)
    ax = axes[0][0]
    train = {k: v for g, k, v in pick("class_count") if g == "sentiment_binary/train"}
    train3 = {k: v for g, k, v in pick("class_count") if g == "sentiment_3/train"}
    labels = ["negative", "neutral", "positive", "unlabelled"]
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [train.get(k, 0) for k in labels], width=0.4, label="sentiment_binary")
    ax.bar([i + 0.2 for i in x], [train3.get(k, 0) for k in labels], width=0.4, label="sentiment_3")
    ax.set_xticks(list(x), labels)
    ax.set_title("Classes in the train split")
    ax.legend()

    ax = axes[0][1]
    ratings = sorted((int(k), v) for _, k, v in pick("rating_count"))
    ax.bar([str(k) for k, _ in ratings], [v for _, v in ratings], color="tab:orange")
    chi = {k: v for _, k, v in pick("chi2_rating_vs_sentiment")}
    title = "Ratings"
    if chi:
        title += f"  (chi2 rating vs sentiment = {chi['chi2']:,.0f}, p = {chi['p_value']:.2g}, dof {int(chi['dof'])})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("stars")

    ax = axes[1][0]
    bins = cfg.quality.length_bins
    keys = [_bin_label(bins, i) for i in range(len(bins) - 1)]
    hist = pick("length_hist")
    classes = sorted({g for g, _, _ in hist})
    width = 0.8 / max(len(classes), 1)
    for j, cls in enumerate(classes):
        counts = {k: v for g, k, v in hist if g == cls}
        ax.bar([i + j * width for i in range(len(keys))], [counts.get(k, 0) for k in keys], width=width, label=cls)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(keys))], keys, rotation=30)
    ax.set_title("Length of text_clean (characters) per sentiment class")
    ax.legend()

    ax = axes[1][1]
    aspects = sorted(((k, v) for _, k, v in pick("aspect_count")), key=lambda kv: kv[1])
    total = next((v for m, g, k, v in rows if m == "rows"), 1.0) or 1.0
    ax.barh([k for k, _ in aspects], [100 * v / total for _, v in aspects], color="tab:green")
    ax.set_title("Reviews mentioning each aspect (%)")
    fig.suptitle(f"reviews_silver data quality ({int(total):,} reviews)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    return out


def write_quality_report(spark: SparkSession, cfg: Config) -> Path:
    """Compute the summary of the silver table, overwrite ``silver_quality`` and write the PNG."""
    rows = quality_rows(spark.table(cfg.table("silver")), cfg)
    tables.overwrite(spark.createDataFrame(rows, QUALITY_SCHEMA), cfg.table("silver_quality"), "silver_quality")
    return plot_quality(rows, cfg, cfg.paths.reports / "silver_quality.png")
