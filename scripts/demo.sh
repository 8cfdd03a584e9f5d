#!/usr/bin/env bash
# Sets everything up, builds, and runs the main job: the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
if [ -x build/tools/gemini-files ]; then
  exec build/tools/gemini-files demo "$@"
fi
exec build/example/flaky_retry "$@"
