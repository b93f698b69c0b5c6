"""Build the real-data models (make models): labeled corpora -> silver -> linear, multitask (its int8
quantization of the champion, and the BitLinear model), joint-topic and bilstm -> champions.

Reuses what is done: a model whose champion was trained on the current silver version with the
current training settings is not trained again.
"""

from __future__ import annotations

import sys

from reviewlake import cli
from reviewlake.labeled import LABELED_SOURCES, extract_labeled
from reviewlake.ingest import ingest
from reviewlake.preprocess import preprocess
from reviewlake.spark import get_spark
from reviewlake.champions import accuracy_table, topic_table_of, up_to_date
from reviewlake.families import family, resolved, train
from reviewlake.training.stage import TrainRequest


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--models", default="linear,multitask,multitask-int8,multitask-bitlinear,joint-topic,bilstm",
                   help="comma-separated model types, in order (default: linear,multitask,multitask-int8,"
                        "multitask-bitlinear,joint-topic,bilstm)")
    p.add_argument("--force", action="store_true", help="train again even if the champions are up to date")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    # The labeled sources it trains on (train.sources), or all of them: only those enter its silver.
    known = [name for name in cfg.train.sources if name in LABELED_SOURCES] or None
    extracted = extract_labeled(cfg.paths.labeled_wheels, cfg.paths.data / "labeled", known)
    spark = get_spark(cfg, "reviewlake models")
    for name, found in extracted.items():
        print(ingest(spark, cfg, "csv", str(found.path), source=name).summary())
    print(preprocess(spark, cfg).summary())
    names = []
    for model in [m for m in args.models.split(",") if m]:
        # The multitask model once per candidate (train.candidates); the best on validation is champion.
        for candidate in [None, *cfg.train.candidates] if family(model).candidates else [None]:
            request = TrainRequest(model=model, backend=cfg.train.backend, num_proc=cfg.train.num_proc,
                                   local_mode=cfg.train.local_mode, use_gpu=cfg.train.use_gpu, candidate=candidate)
            label = f"{model} ({candidate})" if candidate else model
            done = None if args.force else up_to_date(spark, resolved(cfg, candidate), model)
            if done:
                print(f"{label}: {done} was trained on this silver version with these settings; reused")
                if "topic_id" in family(model).columns:
                    print(topic_table_of(spark, cfg, f"{cfg.registry.prefix}{model}"))
            else:
                print(f"{label}: " + train(spark, cfg, request).summary())
        names.append(f"{cfg.registry.prefix}{model}")
    print(accuracy_table(spark, cfg, names))
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
