"""Train a model on reviews_silver across Spark executors, evaluate it and register it in MLflow."""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.spark import get_spark
from reviewlake.families import model_types, train
from reviewlake.training.stage import TrainRequest


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--model", required=True, choices=model_types())
    cli.add_launch_options(p)
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (smoke runs)")
    p.add_argument("--sources", help="comma-separated silver sources to train on (default: all)")
    p.add_argument("--name", help="registered model name (default: registry.prefix + model type)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a killed run from its latest checkpoint")
    p.add_argument("--candidate", help="train the multitask model with these train.candidates settings")
    p.add_argument("--from", dest="source_model", metavar="NAME@ALIAS",
                   help="multitask-int8: the multitask version to quantize (default: multitask@champion)")
    p.add_argument("--promote", action="store_true", help="move the champion alias to this version regardless")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    request = TrainRequest(
        model=args.model, backend=args.backend or cfg.train.backend, num_proc=args.num_proc or cfg.train.num_proc,
        local_mode=args.local_mode or cfg.train.local_mode, use_gpu=args.use_gpu or cfg.train.use_gpu,
        epochs=args.epochs, max_rows=args.max_rows, name=args.name, resume=args.resume, promote=args.promote,
        max_steps=args.max_steps, candidate=args.candidate, source_model=args.source_model,
        sources=[s for s in (args.sources or "").split(",") if s],
    )
    spark = get_spark(cfg, f"reviewlake train {args.model}")
    report = train(spark, cfg, request)
    print(report.summary())
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
