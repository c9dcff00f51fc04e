#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root) to a tested build: installs the packages,
# builds everything (asg, plugins, tests, benchmarks) and runs the whole ctest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
cd build
ctest --output-on-failure -j "${ASG_TEST_JOBS:-$(nproc)}" --timeout 900
