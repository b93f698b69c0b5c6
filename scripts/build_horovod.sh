#!/usr/bin/env bash
# Build horovod 0.28.1 (the last release) against the pinned torch, once per machine.
#
# horovod 0.28.1's CMake compiles its torch extension as C++14, but torch >= 2.1 headers need C++17.
# We patch the three places that pin the standard (the project default, the torch extension, and
# gloo's hard-coded -std=c++11) to C++17 and build a wheel, cached in $WHEEL_DIR so later setups
# install it in seconds. Usage: build_horovod.sh PYTHON WHEEL_DIR
set -euo pipefail
python=$1
wheel_dir=$2
version=0.28.1
torch_version=$("$python" -c 'import torch; print(torch.__version__.split("+")[0])')
stamp="$wheel_dir/horovod-$version-torch$torch_version.built"
if [ -f "$stamp" ] && ls "$wheel_dir"/horovod-$version-*.whl >/dev/null 2>&1; then
  echo "horovod $version for torch $torch_version: cached wheel in $wheel_dir"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "horovod $version: building for torch $torch_version (about 9 minutes on 2 cores, once per machine)"
"$python" -m pip download --no-deps --no-binary :all: -q -d "$work" "horovod==$version"
tar xzf "$work/horovod-$version.tar.gz" -C "$work"
src="$work/horovod-$version"
sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"
sed -i 's/-std=c++11/-std=c++17/' "$src/third_party/gloo/CMakeLists.txt"
grep -q 'CMAKE_CXX_STANDARD 17' "$src/horovod/torch/CMakeLists.txt" || { echo "horovod patch did not apply" >&2; exit 1; }
mkdir -p "$wheel_dir"
rm -f "$wheel_dir"/horovod-$version-*.whl
HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_TENSORFLOW=1 \
HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS="-j$(nproc)" \
  "$python" -m pip wheel --no-deps --no-build-isolation -w "$wheel_dir" "$src" > "$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log" >&2; echo "horovod build failed (log above)" >&2; exit 1; }
touch "$stamp"
echo "horovod $version: wheel cached in $wheel_dir"
