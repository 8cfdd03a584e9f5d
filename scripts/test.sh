#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite (ctest).
# Also builds the ThreadSanitizer configuration of the thread-safety tests
# when that folder exists. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
JOBS=$(nproc)

if [ -d test/thread_safety ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRESILIENCE_SANITIZE=thread -DRESILIENCE_BUILD_BENCHMARKS=OFF -DRESILIENCE_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build build-tsan -j "$JOBS" --target thread_safety_tests
fi

cd build
ctest --output-on-failure -j "$JOBS" --timeout 600
