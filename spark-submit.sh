#!/usr/bin/env bash
# Run a reviewlake stage with spark-submit:
#   ./spark-submit.sh [--profile local|cluster] [--set KEY=VALUE ...] STAGE [ARGS]
# e.g. ./spark-submit.sh ingest --format fasttext --input train.ft.txt.bz2 --source amazon-polarity
#      ./spark-submit.sh sql "SELECT source, count(*) FROM reviews_bronze GROUP BY source"
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
python=$root/.venv/bin/python
if [ ! -x "$python" ]; then
  echo "spark-submit.sh: no environment yet: run ./scripts/bootstrap.sh (or make demo) first" >&2
  exit 2
fi
# The environment is shared by every clone on the machine: import this clone's library first.
export PYTHONPATH="$root/lib${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m reviewlake.submit "$@"
