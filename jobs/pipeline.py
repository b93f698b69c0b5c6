"""Run ingest (of pipeline.inputs), preprocess, train (with --train), score and aggregate in order under one
run id; each stage skips the work already done. Prints seconds per stage and rows per table, and records
both in the pipeline_runs table."""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.config import ConfigError
from reviewlake.pipeline import STAGES, PipelineRequest, check_request, run_pipeline
from reviewlake.spark import get_spark


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--train", action="store_true", help="train the models of pipeline.train (weekly in the schedule)")
    p.add_argument("--models", help="comma-separated model types to train instead of pipeline.train; MODEL:BACKEND "
                                       "trains that one through its own backend (multitask,joint-topic:horovod)")
    cli.add_launch_options(p)
    p.add_argument("--skip", default="", help=f"comma-separated stages to leave out ({', '.join(STAGES)})")
    p.add_argument("--only", default="", help="comma-separated stages to run, the others left out (a scheduler's "
                                              "task per stage)")
    p.add_argument("--run-id", help="record the stages under this id (a scheduler's run id)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    only = [s for s in args.only.split(",") if s]
    if set(only) - set(STAGES):
        raise ConfigError(f"pipeline --only {args.only}: unknown stage; stages: {', '.join(STAGES)}")
    skip = [s for s in args.skip.split(",") if s] + ([s for s in STAGES if s not in only] if only else [])
    request = PipelineRequest(
        train=args.train or bool(args.models), models=tuple(m for m in (args.models or "").split(",") if m),
        backend=args.backend, num_proc=args.num_proc, local_mode=args.local_mode, use_gpu=args.use_gpu,
        epochs=args.epochs, max_rows=args.max_rows, skip=tuple(skip), run_id=args.run_id)
    check_request(cfg, request)  # before Spark starts
    spark = get_spark(cfg, "reviewlake pipeline")
    report = run_pipeline(spark, cfg, request)
    print(report.summary())
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
