"""The main job on the bundled default: generate a small corpus in every format, ingest it, build
the silver table with its data-quality summary, train small models on it, score silver with them and
build the gold topic-by-sentiment tables.

Prints what each stage wrote, the models' test metrics, the topic table, and Spark SQL queries to copy. The models
are registered as demo-linear, demo-multitask and demo-joint-topic, so a demo never moves a real
champion.
"""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.aggregate import aggregate, topic_table
from reviewlake.config import PROJECT_ROOT
from reviewlake.generate import FORMATS, generate
from reviewlake.ingest import ingest
from reviewlake.preprocess import preprocess
from reviewlake.quality import write_quality_report
from reviewlake.registry import resolve
from reviewlake.score import score_reviews
from reviewlake.spark import get_spark
from reviewlake.champions import accuracy_table, topic_table_of
from reviewlake.families import train
from reviewlake.training.stage import TrainRequest

# Small models: a capped number of training rows, one epoch per phase (minutes on 2 cores).
DEMO_TRAIN_ROWS = 2_000
DEMO_EVAL_ROWS = 1_000
DEMO_PREFIX = "demo-"
# Bundled default: a small corpus of each format; fastText is the main one.
DEMO_ROWS = {"fasttext": 20_000, "amazon-json": 2_000, "amazon-2023": 2_000, "amazon-tsv": 2_000,
             "csv": 2_000, "imdb": 500}
DEMO_SOURCES = {"csv": "amazon-14m"}


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the default corpus sizes")
    p.add_argument("--no-train", action="store_true", help="stop after silver (no models)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    spark = get_spark(cfg, "reviewlake demo")
    for i, fmt in enumerate(FORMATS):
        rows = max(1, int(DEMO_ROWS[fmt] * args.scale))
        manifest = generate(fmt, cfg.paths.data / "demo" / fmt, rows, seed=cfg.generate.seed + i,
                            malformed_share=cfg.generate.malformed_share,
                            label_noise=cfg.generate.label_noise,
                            duplicate_share=cfg.generate.duplicate_share)
        ingest(spark, cfg, fmt, manifest.files[0], DEMO_SOURCES.get(fmt))
    report = preprocess(spark, cfg)
    print(report.summary())
    png = write_quality_report(spark, cfg)
    bronze, quarantine, silver = cfg.table("bronze"), cfg.table("quarantine"), cfg.table("silver")
    spark.sql(f"SELECT source, count(*) AS reviews, round(avg(rating), 2) AS avg_rating "
              f"FROM {bronze} GROUP BY source ORDER BY reviews DESC").show(truncate=False)
    spark.sql(f"SELECT source, reason, count(*) AS rows FROM {quarantine} "
              f"GROUP BY source, reason ORDER BY source, reason").show(50, truncate=False)
    spark.sql(f"SELECT split, source, count(*) AS reviews, sum(sentiment_binary) AS positive "
              f"FROM {silver} GROUP BY split, source ORDER BY split, source").show(50, truncate=False)
    print(f"Data-quality plot: {png}")
    if not args.no_train:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"eval_rows": DEMO_EVAL_ROWS})})
        names = []
        for model in ("linear", "multitask", "joint-topic"):
            name = f"{DEMO_PREFIX}{model}"
            print(train(spark, cfg, TrainRequest(model=model, backend=cfg.train.backend, num_proc=cfg.train.num_proc,
                                                 local_mode=cfg.train.local_mode, use_gpu=cfg.train.use_gpu, epochs=1,
                                                 max_rows=DEMO_TRAIN_ROWS, name=name)).summary())
            names.append(name)
        print("Test metrics of the demo models (generated reviews: they prove the pipeline, not accuracy):")
        print(accuracy_table(spark, cfg, names))
        print(topic_table_of(spark, cfg, f"{DEMO_PREFIX}joint-topic"))
        scored = {}
        for model in ("multitask", "joint-topic"):
            scored[model] = resolve(cfg, f"{DEMO_PREFIX}{model}@{cfg.registry.alias}")
            print(score_reviews(spark, cfg, scored[model].reference).summary())
        print(aggregate(spark, cfg, scored["multitask"], scored["joint-topic"]).summary())
        print("Topics by sentiment (gold table topic_sentiment):")
        print(topic_table(spark, cfg))
        print(f"  ./spark-submit.sh predict --model {DEMO_PREFIX}multitask@champion --text \"Great value, fast shipping\"")
        for query in sorted((PROJECT_ROOT / "conf" / "queries").glob("*.sql")):
            print(f"  ./spark-submit.sh sql -f {query.relative_to(PROJECT_ROOT)}")
    print("Query the tables from a new session, e.g.:\n"
          f"  ./spark-submit.sh sql \"SELECT source, label, count(*) FROM {bronze} GROUP BY 1, 2\"\n"
          f"  ./spark-submit.sh sql \"SELECT source_file, source_line, reason, detail FROM {quarantine} LIMIT 10\"\n"
          f"  ./spark-submit.sh sql \"SELECT split, sentiment_3, count(*) FROM {silver} GROUP BY 1, 2 ORDER BY 1, 2\"")
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
