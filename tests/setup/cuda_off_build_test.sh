#!/usr/bin/env bash
# A build with -DASG_CUDA=OFF against the same (CUDA) LibTorch still configures, compiles the code that has a
# CUDA-only path through its other branch (asg_nn's scale-shift-SiLU, the engine's device_info), links, and
# passes asg_nn's tests; the configure step says the CUDA path is not compiled and no .cu is built.
#   cuda_off_build_test.sh SOURCE_DIR WORK_DIR
set -uo pipefail
src=$1
work=$2
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work"
out=$(cmake -S "$src" -B "$work" -G Ninja -DCMAKE_BUILD_TYPE=Release -DASG_CUDA=OFF -DASG_BUILD_BENCH=OFF 2>&1)
rc=$?
[ "$rc" -eq 0 ] || fail "configure with ASG_CUDA=OFF failed
$out"
grep -q "CUDA path compiled: OFF (ASG_CUDA=OFF" <<<"$out" || fail "configure did not say the CUDA path is off
$out"
out=$(cmake --build "$work" -j "${ASG_TEST_BUILD_JOBS:-2}" --target asg_nn_test asg_engine 2>&1)
rc=$?
[ "$rc" -eq 0 ] || fail "building asg_nn_test and asg_engine with ASG_CUDA=OFF failed
$out"
if find "$work" -name '*.cu.o' | grep -q .; then fail "a .cu file was compiled with ASG_CUDA=OFF"; fi
nm -DC "$work/core/libasg_nn.so" | grep -q "scale_shift_silu_forward" && fail "libasg_nn.so has the CUDA kernels' launchers"
out=$("$work/tests/asg_nn_test" 2>&1)
rc=$?
[ "$rc" -eq 0 ] || fail "asg_nn_test failed in the ASG_CUDA=OFF build
$out"
grep -q "this build does not compile the CUDA path" <<<"$out" || fail "the fused-kernel test did not say why it skipped
$out"
rm -rf "$work"
echo "ASG_CUDA=OFF build: 1 passed, 0 failed"
