#!/usr/bin/env bash
# A set of experiment files ("arms", DIR/<arm>.toml, each named <prefix><arm>) over several seeds, then one
# table with mean ± std of every metric. scripts/ablate_temporal.sh and scripts/run_synth.sh call it.
#
#   ./scripts/run_arms.sh --dir DIR --prefix NAME_PREFIX --arms "a b c" [--seeds "0 1 2"]
#                         [--registry runs/ablations.sqlite] [--runs-dir runs/ablations] [--set key=value]...
#
# Runs already FINISHED in the registry (same arm, same seed, same config hash) are skipped, so an
# interrupted sweep picks up where it stopped. Assumes a build (./scripts/build.sh; or ASG=path/to/asg).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="0 1 2"
arms=""
dir=""
prefix=""
registry=runs/ablations.sqlite
runs_dir=runs/ablations
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --arms) arms="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --runs-dir) runs_dir="$2"; shift 2 ;;
    --set) overrides+=(--set "$2"); shift 2 ;;
    *) echo "run_arms.sh: unknown argument '$1' (valid: --dir, --prefix, --arms, --seeds, --registry, --runs-dir, --set)" >&2; exit 2 ;;
  esac
done
[ -n "$dir" ] && [ -n "$arms" ] || { echo "run_arms.sh: --dir and --arms are required" >&2; exit 2; }
asg=${ASG:-./build/asg}  # ASG=path/to/asg runs another build
[ -x "$asg" ] || { echo "run_arms.sh: $asg not found; run ./scripts/build.sh first" >&2; exit 2; }

names=()
for arm in $arms; do
  [ -f "$dir/$arm.toml" ] || { echo "run_arms.sh: no arm '$arm' ($dir/$arm.toml does not exist)" >&2; exit 2; }
  names+=("$prefix$arm")
done
# Seed-major order: if the sweep is stopped, every arm has the same number of finished seeds.
for seed in $seeds; do
  for arm in $arms; do
    file=$dir/$arm.toml
    # The config hash of this arm and seed, to skip what is already recorded.
    hash=$("$asg" run "$file" --dry-run --set "runtime.seed=$seed" "${overrides[@]}" | sed -n '1s/.*config hash \([0-9a-f]*\).*/\1/p')
    if [ -f "$registry" ] && "$asg" runs --status FINISHED --registry "$registry" | grep -q " ${hash:0:12} "; then
      echo "== $arm seed $seed: already finished (config ${hash:0:12}), skipped"
      continue
    fi
    echo "== $arm seed $seed"
    "$asg" run "$file" --set "runtime.seed=$seed" "${overrides[@]}" --registry "$registry" --runs-dir "$runs_dir"
  done
done
benchmark=$("$asg" run "$dir/${arms%% *}.toml" --dry-run "${overrides[@]}" | sed -n "/^\[benchmark\]/,/^\[/s/^name = ['\"]\(.*\)['\"]$/\1/p" | head -n1)
echo
"$asg" summary --benchmark "$benchmark" --names "$(IFS=,; echo "${names[*]}")" --registry "$registry"
