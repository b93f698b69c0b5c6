"""Check Spark's GPU scheduling before a long GPU run: which GPU each training process would get.

Runs one barrier stage of --num-proc tasks (as `train --use-gpu` does first) and prints, per task, its
host, the GPU addresses Spark assigned it and the CUDA_VISIBLE_DEVICES TorchDistributor would set.
Fails in one line when a task gets no GPU or two tasks share one.
"""

from __future__ import annotations

import json
import sys

from reviewlake import cli
from reviewlake.spark import get_spark
from reviewlake.training.backends import check_gpus, check_slots


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--num-proc", type=int, help="training processes (default: train.num_proc)")
    p.add_argument("--local-mode", action="store_true", help="processes on the driver, not on executors")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    num_proc = args.num_proc or cfg.train.num_proc
    spark = get_spark(cfg, "reviewlake gpus", catalog=False)  # no tables: runs beside a job
    check_slots(spark, num_proc, args.local_mode)
    for task in check_gpus(spark, num_proc, args.local_mode):
        print(json.dumps(task))
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
