#!/usr/bin/env bash
# The test suite as CI runs it: type checks of the library, then pytest. Slow end-to-end and
# benchmark tests run in their bounded smoke form unless REVIEWLAKE_FULL=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}
# The environment is shared by every clone on the machine: import this clone's library first.
export PYTHONPATH="$root/lib${PYTHONPATH:+:$PYTHONPATH}"
.venv/bin/python -m mypy lib/reviewlake
exec .venv/bin/python -m pytest "$@"
