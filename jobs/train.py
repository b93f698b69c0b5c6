"""Train a model on reviews_silver across Spark executors, evaluate it and register it in MLflow."""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.spark import get_spark
from reviewlake.training.backends import BACKENDS
from reviewlake.training.stage import MODEL_TYPES, TrainRequest, train


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--model", required=True, choices=MODEL_TYPES)
    p.add_argument("--backend", choices=BACKENDS, help="how torch models are launched (default: train.backend)")
    p.add_argument("--num-proc", type=int, help="training processes (default: train.num_proc)")
    p.add_argument("--local-mode", action="store_true", help="run the processes on the driver, not on executors")
    p.add_argument("--use-gpu", action="store_true", help="one GPU per process (nccl)")
    p.add_argument("--epochs", type=int, help="phase-2 epochs (default: train.multitask.epochs)")
    p.add_argument("--max-rows", type=int, help="at most this many training rows")
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
