#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine (as root) and
# configures and builds it. Safe to run twice: installs only what is missing.
#   scripts/setup.sh [build-dir]        (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}

PACKAGES=(g++ cmake ninja-build pkg-config libssl-dev
          libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-test1.81-dev
          libbenchmark-dev clang-14 libclang-rt-14-dev libfuzzer-14-dev ccache
          prometheus-cpp-dev libhiredis-dev redis-server nodejs npm)
missing=()
for p in "${PACKAGES[@]}"; do
  # nodejs/npm may come from elsewhere than Debian: accept any working binary.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node packages for the SDK conformance test and the Node side of the wait
# benchmark (bench/side_by_side.py), pinned by the committed lock files.
for dir in test/node bench/node; do
  if [ -f "$dir/package.json" ]; then
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  fi
done

JOBS=$(nproc)
# ccache makes a rebuild (another build folder, a clean checkout) cheap.
LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=$PWD
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LAUNCHER[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
