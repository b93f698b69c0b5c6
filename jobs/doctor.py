"""Check that every executor runs the driver's environment: one task per task slot reports its Python and
the versions of the packages the jobs import; a difference is a one-line error naming the task and the
package (run it after setting spark.env_archive or installing the environment on the nodes)."""

from __future__ import annotations

import sys
import time

from reviewlake import cli
from reviewlake.doctor import check_executors
from reviewlake.spark import get_spark
from reviewlake.training.backends import REGISTER_WAIT_S, task_slots


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--tasks", type=int, help="tasks to run (default: every task slot, after executors register)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    spark = get_spark(cfg, "reviewlake doctor", catalog=False)  # no tables: runs beside a job
    tasks = args.tasks
    if tasks is None:
        deadline = time.monotonic() + REGISTER_WAIT_S  # a cluster's executors register a few seconds late
        while (tasks := task_slots(spark)) < 1 and time.monotonic() < deadline:
            time.sleep(1)
    report = check_executors(spark, max(1, tasks))
    print(report.summary())
    if report.problems:
        raise ValueError(f"{len(report.problems)} task(s) run another environment than the driver: "
                         f"{report.problems[0]}; build the archive with ./spark-submit.sh pack and set "
                         "spark.env_archive, or install the environment on every node")
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
