#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root) to a tested build: installs the packages, builds
# everything (asg, plugins, tests, benchmarks) and runs the whole ctest suite.
#
#   ./scripts/test.sh          everything: every tier (unit, plugin, e2e, fuzz, setup, paper, lint, bench smoke)
#   ./scripts/test.sh --fast   the edit-test loop: the unit tiers (layers, registry, plugins' own tests, conformance,
#                              lint) without the end-to-end, browser, fuzz, setup, paper and benchmark-smoke tests and
#                              without the slow families of tests/tiers/slow.txt; skips the package set-up when the
#                              build is already configured
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
for arg in "$@"; do
  case "$arg" in
    --fast) fast=1 ;;
    *) echo "test.sh: unknown argument '$arg' (valid: --fast)" >&2; exit 2 ;;
  esac
done
if [ "$fast" = 1 ] && [ -f build/build.ninja ]; then
  ./scripts/build.sh
else
  ./scripts/setup.sh
  ./scripts/build.sh
fi
cd build
if [ "$fast" = 1 ]; then
  # Through the test binaries, a few chunks each (scripts/fast_tests.py says why), without tests/tiers/slow.txt.
  python3 ../scripts/fast_tests.py . --jobs "${ASG_TEST_JOBS:-$(nproc)}"
else
  ctest --output-on-failure -j "${ASG_TEST_JOBS:-$(nproc)}" --timeout 900
fi
