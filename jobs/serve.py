"""Serve predictions over HTTP (POST /predict, POST /predict/csv) and a results page with the topic x
sentiment gold table, on the registered champions. Loopback by default; Ctrl-C stops it."""

from __future__ import annotations

import sys

from reviewlake import cli


def main(argv: list[str] | None = None) -> int:
    p = cli.parser(__doc__ or "")
    p.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: serve.port, 8765)")
    p.add_argument("--model", help="sentiment model NAME@ALIAS (default: aggregate.sentiment_model at registry.alias)")
    p.add_argument("--topic-model", help="topic model NAME@ALIAS (default: aggregate.topic_model at registry.alias)")
    args = p.parse_args(argv)
    cfg = cli.config(args)
    import uvicorn

    from reviewlake.serve import create_app, load_models
    from reviewlake.spark import get_spark

    models = load_models(cfg, args.model, args.topic_model)  # an unknown model fails here, before Spark starts
    # Spark cleans the texts by silver's rules, in this process on one core; no catalog, so the jobs keep the
    # embedded metastore.
    local = cfg.model_copy(update={"spark": cfg.spark.model_copy(update={"master": "local[1]"})})
    spark = get_spark(local, "reviewlake serve", catalog=False)
    host, port = args.host or cfg.serve.host, args.port or cfg.serve.port
    print(f"serving {models.sentiment_ref} (topics: {models.topics_ref or 'none'}) on http://{host}:{port}/", flush=True)
    uvicorn.run(create_app(spark, cfg, models), host=host, port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    cli.run(main, sys.argv[1:])
