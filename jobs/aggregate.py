"""Rebuild the gold tables (topic and aspect by sentiment) from review_scores joined to silver, and
write their charts."""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.aggregate import aggregate, topic_table
from reviewlake.registry import resolve
from reviewlake.spark import get_spark


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--sentiment-model", help="NAME@ALIAS or NAME/VERSION whose sentiment, rating and aspects "
                                             "count (default: aggregate.sentiment_model at registry.alias)")
    p.add_argument("--topic-model", help="NAME@ALIAS or NAME/VERSION whose topics count "
                                         "(default: aggregate.topic_model at registry.alias)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    default = f"{cfg.registry.prefix}{{}}@{cfg.registry.alias}"
    sentiment = resolve(cfg, args.sentiment_model or default.format(cfg.aggregate.sentiment_model))
    topics = resolve(cfg, args.topic_model or default.format(cfg.aggregate.topic_model))
    spark = get_spark(cfg, "reviewlake aggregate")
    report = aggregate(spark, cfg, sentiment, topics)
    print(report.summary())
    print(topic_table(spark, cfg))
    print("Charts: " + ", ".join(str(p) for p in report.charts))
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
