#!/usr/bin/env bash
# The temporal ablation: every arm in experiments/ablations/temporal/ (none, temporal_conv,
# temporal_attention, sti) over several seeds, then one table with mean ± std of every metric.
#
#   ./scripts/ablate_temporal.sh [--seeds "0 1 2"] [--registry runs/ablations.sqlite] [--runs-dir runs/ablations]
#                                [--arms "none temporal_conv temporal_attention sti"] [--set key=value]...
#
# Runs already FINISHED in the registry (same arm, same seed, same config hash) are skipped, so an
# interrupted sweep picks up where it stopped. Assumes a build (./scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./scripts/run_arms.sh --dir experiments/ablations/temporal --prefix ablation-temporal- \
  --arms "none temporal_conv temporal_attention sti" "$@"
