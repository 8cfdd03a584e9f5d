#!/usr/bin/env bash
# Builds and runs the consumer project (test/consumer) against
#   (a) the package `cmake --install` writes from BUILD_DIR, and
#   (b) the source tree through add_subdirectory.
#   test/consumer/run.sh [build-dir]        (default: build; must be configured and built)
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
BUILD_DIR=$(realpath "${1:-build}")
OUT=$BUILD_DIR/consumer
JOBS=$(nproc)
CONFIG=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if command -v ccache >/dev/null 2>&1; then CONFIG+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
rm -rf "$OUT"

# The prometheus adapter is installed and checked when the build has it.
PROMETHEUS=OFF
if grep -q '^RESILIENCE_PROMETHEUS:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; then PROMETHEUS=ON; fi
run_prometheus() {
  if [ "$PROMETHEUS" = ON ]; then
    "$1/consumer_prometheus"
  fi
}

# So is the redis adapter (fleet gates).
REDIS=OFF
if grep -q '^RESILIENCE_REDIS:BOOL=ON' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null; then REDIS=ON; fi
run_redis() {
  if [ "$REDIS" = ON ]; then
    "$1/consumer_redis"
  fi
}

echo "consumer: installed package"
cmake --build "$BUILD_DIR" -j "$JOBS" --target resilience_core resilience_http resilience_gemini resilience_sim \
  $([ "$PROMETHEUS" = ON ] && echo asio_resilience_prometheus) $([ "$REDIS" = ON ] && echo asio_resilience_redis)
cmake --install "$BUILD_DIR" --prefix "$OUT/prefix" >/dev/null
cmake -S test/consumer -B "$OUT/installed" "${CONFIG[@]}" -DCMAKE_PREFIX_PATH="$OUT/prefix" >/dev/null
cmake --build "$OUT/installed" -j "$JOBS"
"$OUT/installed/consumer_core"
"$OUT/installed/consumer_gemini"
run_prometheus "$OUT/installed"
run_redis "$OUT/installed"

echo "consumer: add_subdirectory"
cmake -S test/consumer -B "$OUT/subdirectory" "${CONFIG[@]}" -DASIO_RESILIENCE_SOURCE_DIR="$SRC" \
  -DRESILIENCE_PROMETHEUS="$PROMETHEUS" -DRESILIENCE_REDIS="$REDIS" >/dev/null
cmake --build "$OUT/subdirectory" -j "$JOBS"
"$OUT/subdirectory/consumer_core"
"$OUT/subdirectory/consumer_gemini"
run_prometheus "$OUT/subdirectory"
run_redis "$OUT/subdirectory"
