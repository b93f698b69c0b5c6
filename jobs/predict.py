"""Score texts with a registered model: one text as JSON, or a CSV with a 'text' column."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from reviewlake import cli, registry
from reviewlake.predict import as_json, check_csv, predict_csv, predict_texts
from reviewlake.spark import get_spark


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--model", required=True, help="NAME@ALIAS (e.g. multitask@champion) or NAME/VERSION")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="one review; prints JSON")
    what.add_argument("--input", type=Path, help="CSV file with a 'text' column")
    p.add_argument("--output", type=Path, help="CSV to write (with --input)")
    p.add_argument("--spark-above", type=int, default=200_000,
                   help="score files with more rows than this through Spark (default 200000)")
    args = p.parse_args(argv)
    if args.input is not None and args.output is None:
        p.error("--input needs --output")
    cfg = cli.config(args)
    if args.input is not None:
        check_csv(args.input)
    model = registry.load(cfg, args.model)  # a bad input or model fails here, before Spark starts
    spark = get_spark(cfg, "reviewlake predict", catalog=False)  # no tables: the jobs keep the metastore
    if args.text is not None:
        row = predict_texts(spark, cfg, model, pd.Series([args.text])).iloc[0]
        print(json.dumps({"model": args.model, "text": args.text, **as_json(row)}, indent=2))
        return 0
    rows = predict_csv(spark, cfg, args.model, model, args.input, args.output, args.spark_above)
    print(f"scored {rows:,} rows of {args.input} with {args.model} into {args.output}")
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
