"""Check a registered model beyond its test splits: hand-written product reviews (another domain than
the movie and drug corpora) and silver's long reviews with windows averaged vs the first window only."""

from __future__ import annotations

import sys
from pathlib import Path

from reviewlake import cli
from reviewlake.checks import PRODUCT_REVIEWS, check_model
from reviewlake.spark import get_spark


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--model", required=True, help="NAME@ALIAS (e.g. multitask@champion) or NAME/VERSION")
    p.add_argument("--reviews", type=Path, default=PRODUCT_REVIEWS, help="CSV of label,text (default: %(default)s)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    spark = get_spark(cfg, "reviewlake check")
    print(check_model(spark, cfg, args.model, args.reviews).summary())
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
