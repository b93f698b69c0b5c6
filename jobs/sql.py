"""Run Spark SQL against the reviewlake catalog and print the results."""

from __future__ import annotations

import sys
from pathlib import Path

from reviewlake import cli
from reviewlake.spark import get_spark
from reviewlake.sql import run_statements, split_statements


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("query", nargs="?", help="SQL statement(s), separated by ';'")
    p.add_argument("-f", "--file", type=Path, help="file of SQL statements")
    p.add_argument("-n", "--limit", type=int, default=100, help="rows to print per result (default 100)")
    args = p.parse_args(argv)
    if (args.query is None) == (args.file is None):
        p.error("give either a query or -f FILE")
    if args.file is not None and not args.file.is_file():
        raise FileNotFoundError(f"SQL file {args.file} does not exist")
    text = args.query if args.query is not None else args.file.read_text()
    statements = split_statements(text)
    if not statements:
        raise ValueError("no SQL statement given")
    cfg = cli.config(args)
    spark = get_spark(cfg, "reviewlake sql")
    spark.catalog.setCurrentDatabase(cfg.database)
    run_statements(spark, statements, args.limit)
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
