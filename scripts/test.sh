#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite (ctest).
# The thread-safety tests are also built with clang's ThreadSanitizer and run
# first; the main ctest run comes last, so its summary ends the output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
JOBS=$(nproc)

if [ -f test/thread_safety/CMakeLists.txt ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DRESILIENCE_SANITIZE=thread -DRESILIENCE_BUILD_BENCHMARKS=OFF -DRESILIENCE_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build build-tsan -j "$JOBS" --target thread_safety_tests
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
     ctest --output-on-failure -R '^thread_safety' --timeout 600)
fi

# The consumer project against the installed package and through add_subdirectory.
test/consumer/run.sh build

cd build
ctest --output-on-failure -j "$JOBS" --timeout 600
