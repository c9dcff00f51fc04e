#!/usr/bin/env bash
# Configures and builds ASG Lab in ./build (Release). Extra arguments are build targets.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${ASG_BUILD_JOBS:-$(nproc)}
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
if [ $# -gt 0 ]; then
  cmake --build build -j "$jobs" --target "$@"
else
  cmake --build build -j "$jobs"
fi
