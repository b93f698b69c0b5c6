"""Score silver reviews with a registered model into review_scores: only the reviews with no score of
that model version yet (--full: all of them), one MERGE commit per chunk."""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.registry import resolve
from reviewlake.score import score_reviews
from reviewlake.spark import get_spark


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--model", required=True, help="NAME@ALIAS (e.g. multitask@champion) or NAME/VERSION")
    p.add_argument("--full", action="store_true", help="score every silver review again, not only the new ones")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    resolve(cfg, args.model)  # an unknown model fails here, before Spark starts
    spark = get_spark(cfg, f"reviewlake score {args.model}")
    print(score_reviews(spark, cfg, args.model, full=args.full).summary())
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
