"""Build reviews_silver from reviews_bronze: clean, filter, de-duplicate, label, split, balance."""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.preprocess import preprocess
from reviewlake.quality import write_quality_report
from reviewlake.spark import get_spark


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if silver is up to date with bronze and the config")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    spark = get_spark(cfg, "reviewlake preprocess")
    report = preprocess(spark, cfg, force=args.force)
    print(report.summary())
    if not report.skipped:
        png = write_quality_report(spark, cfg)
        print(f"data-quality summary: table {cfg.table('silver_quality')}, plot {png}")
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
