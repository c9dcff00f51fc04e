#!/usr/bin/env bash
# The model-zoo systems shrunk to the synthetic benchmark (experiments/synth/: VideoLDM-, VideoFactory-,
# I2VGen-XL-style UNet3D and a Latte-style DiT, each with and without STI) over seeds 0, 1, 2, then the
# table docs/ablations.md shows. About 3.5 minutes per run on 2 cores.
#
#   ./scripts/run_synth.sh [--seeds "0 1 2"] [--arms "videoldm videoldm_sti ..."] [--registry runs/synth.sqlite]
#                          [--runs-dir runs/synth] [--set key=value]...
#
# Finished runs are skipped, so an interrupted sweep picks up where it stopped. Assumes ./scripts/build.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./scripts/run_arms.sh --dir experiments/synth --prefix synth- --registry runs/synth.sqlite --runs-dir runs/synth \
  --arms "videoldm videoldm_sti videofactory videofactory_sti i2vgen_xl i2vgen_xl_sti dit dit_sti" "$@"
