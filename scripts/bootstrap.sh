#!/usr/bin/env bash
# Set up everything reviewlake needs on a fresh Linux machine with Python 3.11, Java 17 and Maven:
# a virtual environment with the pinned packages, horovod built from source, Delta's jars from Maven
# Central. Safe to run again: each step is skipped when its result is already in the cache.
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
# The library is not installed into the shared environment: every clone's entry points (spark-submit.sh,
# scripts/test.sh, benchmarks, notebooks) put their own lib/ first, executors get it as a zip, and an
# environment without editable installs is one venv-pack can pack. Earlier bootstraps installed it.
if compgen -G "$venv/lib/python3*/site-packages/__editable__.reviewlake-*" >/dev/null; then
  "$venv/bin/python" -m pip --disable-pip-version-check -q uninstall -y reviewlake
fi

delta_version=$(sed -n 's:.*<delta.version>\(.*\)</delta.version>.*:\1:p' "$root/jars/pom.xml")
jars=$cache/jars
if ! ls "$jars"/delta-spark_2.13-"$delta_version".jar >/dev/null 2>&1; then
  echo "bootstrap: resolving Delta $delta_version jars from Maven Central into $jars"
  rm -rf "$jars"
  mvn -q -B -f "$root/jars/pom.xml" dependency:copy-dependencies -DoutputDirectory="$jars" \
      -DincludeScope=runtime -DexcludeArtifactIds=scala-library
fi
# The service's page is tested in a real headless browser: Debian's Chromium (Playwright drives it; its
# own browser download is not reachable from these machines).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing Debian's chromium (headless browser for the service's page test)"
    apt-get install -y -q --no-install-recommends chromium >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
  else
    echo "bootstrap: no chromium; install it (sudo apt-get install chromium) for the service's page test" >&2
  fi
fi
# The driver JVM's class archive (AppCDS) for this environment: jobs start 3 to 4 s sooner
# (benchmarks/startup.py). Dumped once by a short session; a failure costs only the speed-up.
PYTHONPATH="$root/lib" "$venv/bin/python" "$root/scripts/class_archive.py" >"$cache/class_archive.log" 2>&1 \
  || echo "bootstrap: could not dump the class archive (jobs start slower); see $cache/class_archive.log" >&2
"$root/scripts/fetch_data.sh" "$venv/bin/python" "$cache/data"
"$root/scripts/fetch_encoders.sh" "$venv/bin/python" "$cache/encoders"
echo "bootstrap: ready ($venv, jars in $jars, labeled-review wheels in $cache/data, encoders in $cache/encoders)"
