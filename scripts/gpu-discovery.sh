#!/usr/bin/env bash
# Spark's GPU discovery script (spark.*.resource.gpu.discoveryScript): the GPUs of this machine as
# {"name": "gpu", "addresses": ["0", "1", ...]}, from nvidia-smi; none when it has no GPU.
set -euo pipefail
addresses=""
if command -v nvidia-smi >/dev/null 2>&1; then
  addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed -e 's/^ *//' -e 's/.*/"&"/' | paste -sd, -)
fi
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
