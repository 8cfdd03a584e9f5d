#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite (ctest).
#   scripts/test.sh           everything (what CI runs)
# Stages, in this order (each reuses its build folder between runs; ccache,
# when installed, is used by every one):
#   1. build/       g++, the whole project (scripts/setup.sh)
#   2. build-tsan/  clang ThreadSanitizer: the thread-safety tests, and the
#                   Redis adapter's tests when it is built (each starts its
#                   own redis-server; skipped without one)
#   3. build-asan/  clang AddressSanitizer + UndefinedBehaviorSanitizer
#                   (-fno-sanitize-recover: any report fails): the test
#                   suite (the Redis adapter's included), every libFuzzer
#                   target run briefly on its seed corpus, a short soak, and
#                   bench_fleet's in-process rounds (a smoke, about a second)
#   4. build/       the main ctest run, last, so that its summary ends the output
# RESILIENCE_SKIP_SANITIZERS=1 skips stages 2 and 3; FUZZ_SECONDS (default 5)
# sets each fuzzer's time in stage 3. The full fuzzing and soak runs are
# documented commands (README.md, "Sanitizers, fuzzing, soak").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
JOBS=$(nproc)
LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths inside the checkout hash as relative ones: a clone elsewhere reuses the cache.
  export CCACHE_BASEDIR=$PWD
fi
# The sanitizer builds compile Asio and Beast once (our own opt-in separate
# compilation): they are for us, never installed, and build twice as fast.
SEPARATE=(-DRESILIENCE_SEPARATE_COMPILATION=ON)

if [ "${RESILIENCE_SKIP_SANITIZERS:-0}" != 1 ] && [ -f test/thread_safety/CMakeLists.txt ]; then
  echo "== ThreadSanitizer: thread-safety tests (build-tsan)"
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LAUNCHER[@]}" \
    "${SEPARATE[@]}" -DRESILIENCE_SANITIZE=thread -DRESILIENCE_BUILD_BENCHMARKS=OFF -DRESILIENCE_BUILD_EXAMPLES=OFF >/dev/null
  TSAN_TARGETS=(thread_safety_tests)
  if grep -q '^RESILIENCE_REDIS:BOOL=ON' build-tsan/CMakeCache.txt; then TSAN_TARGETS+=(redis_tests); fi
  cmake --build build-tsan -j "$JOBS" --target "${TSAN_TARGETS[@]}"
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
     ctest --output-on-failure -R '^(thread_safety|redis_tests$)' --timeout 600)
fi

if [ "${RESILIENCE_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer: test suite, fuzzers, short soak (build-asan)"
  # -O1: the sanitizers' usual level, and a faster build than -O2. The
  # "undefined" group minus "function": clang 14 cannot compile coroutines
  # with -fsanitize=function ("Cannot represent a difference across sections").
  UBSAN_CHECKS=alignment,bool,builtin,bounds,enum,float-cast-overflow,integer-divide-by-zero,nonnull-attribute,null
  UBSAN_CHECKS=$UBSAN_CHECKS,object-size,pointer-overflow,return,returns-nonnull-attribute,shift,signed-integer-overflow
  UBSAN_CHECKS=$UBSAN_CHECKS,unreachable,vla-bound,vptr
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LAUNCHER[@]}" \
    "-DRESILIENCE_SANITIZE=address,$UBSAN_CHECKS" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" \
    "-DCMAKE_CXX_FLAGS=-fno-sanitize-recover=all" "${SEPARATE[@]}" -DRESILIENCE_BUILD_BENCHMARKS=ON >/dev/null
  FUZZERS=$(sed -n 's/^ *resilience_fuzzer(\([a-z_]*\).*/\1/p' test/fuzz/CMakeLists.txt)
  REDIS_TARGETS=()
  if grep -q '^RESILIENCE_REDIS:BOOL=ON' build-asan/CMakeCache.txt; then REDIS_TARGETS=(redis_tests bench_fleet); fi
  # shellcheck disable=SC2086
  cmake --build build-asan -j "$JOBS" --target unit_tests http_tests sim_tests gemini_tests fault_matrix_tests async_tests hostile_tests \
    bench_soak "${REDIS_TARGETS[@]}" $FUZZERS
  export ASAN_OPTIONS="detect_leaks=1 abort_on_error=0 strict_string_checks=1 detect_stack_use_after_return=0"
  export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1"
  # The test programs above (the examples, the SDK conformance test driven by
  # node, and the thread-safety gates, which are TSan's, are not rerun).
  (cd build-asan && ctest --output-on-failure -j "$JOBS" --timeout 900 \
     -R '^(unit_tests|http_tests|sim_tests|gemini_tests|fault_matrix|async_tests|hostile_tests|redis_tests)$')
  for f in $FUZZERS; do
    echo "-- $f: ${FUZZ_SECONDS:-5} s on its corpus"
    # New inputs go to the first folder (scratch); the committed seeds are only read.
    mkdir -p "build-asan/fuzz-corpus/$f"
    if ! build-asan/test/fuzz/"$f" -max_total_time="${FUZZ_SECONDS:-5}" \
         "build-asan/fuzz-corpus/$f" "test/fuzz/corpus/${f#fuzz_}" >"build-asan/fuzz-corpus/$f.log" 2>&1; then
      cat "build-asan/fuzz-corpus/$f.log"
      exit 1
    fi
    tail -n 1 "build-asan/fuzz-corpus/$f.log"
  done
  build-asan/bench/bench_soak --polls 100000 --waits 200 --max-growth 0 | tail -n 1
  if [ ${#REDIS_TARGETS[@]} -gt 0 ] && [ -x /usr/bin/redis-server ]; then
    build-asan/adapters/redis/bench_fleet --only model --members 4 --calls 20 | tail -n 1
  fi
fi

# The consumer project against the installed package and through add_subdirectory.
test/consumer/run.sh build

cd build
ctest --output-on-failure -j "$JOBS" --timeout 600
