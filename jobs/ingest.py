"""Ingest a review corpus into reviews_bronze (and bad records into reviews_quarantine)."""

from __future__ import annotations

import json
import sys

from reviewlake import cli
from reviewlake.ingest import ingest
from reviewlake.sources import registry
from reviewlake.spark import get_spark


def main(argv: list[str] | None = None) -> int:
    readers = registry()
    p = cli.parser(__doc__ or "")
    p.add_argument("--format", required=True, choices=list(readers),
                   help="; ".join(f"{r.name}: {r.doc}" for r in readers.values()))
    p.add_argument("--input", required=True, help="file, folder or glob (local, hdfs://, s3a://, ...)")
    p.add_argument("--source", help="corpus name stored in bronze.source; selects the column mapping "
                                    "for csv/parquet (default: the format's name)")
    p.add_argument("--category", help="category of every review, when the files do not say it")
    p.add_argument("--skip-unchanged", action="store_true",
                   help="read nothing when an earlier run read the same files (path, size, modification time)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    spark = get_spark(cfg, f"reviewlake ingest {args.source or args.format}")
    report = ingest(spark, cfg, args.format, args.input, args.source, args.category,
                    skip_unchanged=args.skip_unchanged)
    print(json.dumps({k: v if isinstance(v, (int, bool)) or v is None else str(v) for k, v in vars(report).items()}))
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
