#!/usr/bin/env bash
# Set up everything reviewlake needs on a fresh Linux machine with Python 3.11, Java 17 and Maven:
# a virtual environment with the pinned packages, horovod built from source, Delta's jars from Maven
# Central, and the library installed in development mode. Safe to run again: each step is skipped
# when its result is already in the cache.
#
# The cache ($REVIEWLAKE_CACHE, default ~/.cache/reviewlake) is shared by every clone on the machine;
# the environment's folder is named after a hash of the files that define it, so a change to the pins
# builds a new one. .venv in the repository links to it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${REVIEWLAKE_CACHE:-$HOME/.cache/reviewlake}
python=${PYTHON:-python3.11}

command -v "$python" >/dev/null || { echo "bootstrap: $python not found; install Python 3.11 or set PYTHON" >&2; exit 1; }
command -v java >/dev/null || { echo "bootstrap: java not found; install OpenJDK 17" >&2; exit 1; }
command -v mvn >/dev/null || { echo "bootstrap: mvn not found; install Maven (it resolves Delta's jars)" >&2; exit 1; }

# Only the files that define the environment name it, so a change to the data or jar steps below
# does not rebuild it.
key=$(cat "$root"/requirements/*.txt "$root/scripts/build_horovod.sh" \
      | sha256sum | cut -c1-12)
venv=$cache/venv-$key
mkdir -p "$cache"

if [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: creating $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
  "${pip[@]}" install --upgrade pip 'setuptools>=77' wheel
  "${pip[@]}" install -c "$root/requirements/constraints.txt" \
      -r "$root/requirements/base.txt" -r "$root/requirements/dev.txt"
  # petastorm pins setuptools<70, which would break torch's toolchain; it imports fine without.
  "${pip[@]}" install --no-deps -c "$root/requirements/constraints.txt" petastorm
  "$root/scripts/build_horovod.sh" "$venv/bin/python" "$cache/wheels"
  "${pip[@]}" install --no-deps "$cache"/wheels/horovod-0.28.1-*.whl
  touch "$venv/.complete"
fi
ln -sfn "$venv" "$root/.venv"
"$venv/bin/python" -m pip --disable-pip-version-check -q install --no-deps --no-build-isolation -e "$root"

delta_version=$(sed -n 's:.*<delta.version>\(.*\)</delta.version>.*:\1:p' "$root/jars/pom.xml")
jars=$cache/jars
if ! ls "$jars"/delta-spark_2.13-"$delta_version".jar >/dev/null 2>&1; then
  echo "bootstrap: resolving Delta $delta_version jars from Maven Central into $jars"
  rm -rf "$jars"
  mvn -q -B -f "$root/jars/pom.xml" dependency:copy-dependencies -DoutputDirectory="$jars" \
      -DincludeScope=runtime -DexcludeArtifactIds=scala-library
fi
"$root/scripts/fetch_data.sh" "$venv/bin/python" "$cache/data"
"$root/scripts/fetch_encoders.sh" "$venv/bin/python" "$cache/encoders"
echo "bootstrap: ready ($venv, jars in $jars, labeled-review wheels in $cache/data, encoders in $cache/encoders)"
