#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root) to a leaderboard: installs the packages, builds
# asg and its plugins, evaluates the untrained quickstart model, trains the quickstart model on the
# CPU (a few minutes), and prints the benchmark leaderboard. Outputs go to runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh asg
./build/asg run experiments/quickstart_untrained.toml
./build/asg run experiments/quickstart.toml
echo
./build/asg leaderboard --benchmark synthetic-stickers-v2-16px
echo
echo "Samples: runs/<run-id>/samples/*.gif (grid.gif shows 16 at once). Registry: runs/registry.sqlite"
