#!/usr/bin/env bash
# The configure step's refusals (cmake/AsgTorch.cmake), each against a stand-in `torch` module that
# reports what a given wheel would (version, CUDA, C++ ABI): CMake must stop, naming what is wrong, before
# it looks for anything else.
#  1. ASG_CUDA=ON with a CPU LibTorch;
#  2. ASG_CUDA=ON with a CUDA LibTorch but no nvcc;
#  3. a wheel built with the pre-C++11 ABI;
#  4. ASG_CUDA=maybe (not a choice);
#  5. ASG_PYTHON that does not exist.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# fake_python DIR CUDA ABI: a python whose `import torch` reports the given CUDA version ("" = CPU) and ABI.
fake_python() {
  local dir=$1 cuda=None abi=$3
  [ -n "$2" ] && cuda="\"$2\""
  mkdir -p "$dir/site/torch/utils" "$dir/site/torch/_C"
  cat > "$dir/site/torch/__init__.py" <<PY
__version__ = "2.14.1+stand-in"
class version:
    cuda = $cuda
from . import _C, utils
PY
  echo "_GLIBCXX_USE_CXX11_ABI = $abi" > "$dir/site/torch/_C/__init__.py"
  echo "cmake_prefix_path = '$dir/nonexistent'" > "$dir/site/torch/utils/__init__.py"
  printf '#!/bin/sh\nPYTHONPATH=%s exec /usr/bin/python3 -S "$@"\n' "$dir/site" > "$dir/python"
  chmod +x "$dir/python"
}

# configure NAME ARGS...: runs cmake into its own build folder; sets $out (CMake's lines joined: it wraps
# messages) and $rc.
configure() {
  local name=$1; shift
  out=$(cmake -S "$repo" -B "$work/build-$name" -G Ninja "$@" 2>&1 | tr '\n' ' ' | tr -s ' ')
  rc=${PIPESTATUS[0]}
}

fake_python "$work/cpu" "" True
configure cpu_on -DASG_CUDA=ON -DASG_PYTHON="$work/cpu/python"
[ "$rc" -ne 0 ] || fail "ASG_CUDA=ON with a CPU LibTorch configured"
grep -q "ASG_CUDA=ON, but the LibTorch of $work/cpu/python (torch 2.14.1+stand-in) is a CPU build" <<<"$out" ||
  fail "ASG_CUDA=ON with a CPU LibTorch: message missing
$out"

fake_python "$work/cuda" "13.0" True
configure cuda_no_nvcc -DASG_CUDA=ON -DASG_PYTHON="$work/cuda/python" -DCUDAToolkit_ROOT="$work/no-toolkit"
[ "$rc" -ne 0 ] || fail "ASG_CUDA=ON without nvcc configured"
grep -q "ASG_CUDA=ON, but no nvcc was found for CUDA 13.0" <<<"$out" || fail "no nvcc: message missing
$out"

fake_python "$work/old_abi" "" False
configure old_abi -DASG_PYTHON="$work/old_abi/python"
[ "$rc" -ne 0 ] || fail "a pre-C++11-ABI wheel configured"
grep -q "uses the pre-C++11 ABI" <<<"$out" || fail "old ABI: message missing
$out"

configure bad_choice -DASG_CUDA=maybe -DASG_PYTHON="$work/cpu/python"
[ "$rc" -ne 0 ] || fail "ASG_CUDA=maybe configured"
grep -q "ASG_CUDA=maybe: not a choice (valid: AUTO, ON, OFF)" <<<"$out" || fail "bad choice: message missing
$out"

configure no_python -DASG_PYTHON="$work/nowhere/python"
[ "$rc" -ne 0 ] || fail "a missing ASG_PYTHON configured"
grep -q "ASG_PYTHON=$work/nowhere/python does not exist" <<<"$out" || fail "missing python: message missing
$out"
echo "configure refusals: 5 passed, 0 failed"
