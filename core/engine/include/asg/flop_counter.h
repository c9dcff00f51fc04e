// Counting the floating-point operations a piece of LibTorch code performs, op by op, as it runs: the
// matrix products and convolutions (where all but a negligible share of a diffusion model's arithmetic is),
// forward and backward, with a multiply-add counted as 2. Elementwise ops, norms and softmax are not
// counted, so the count is what a model-FLOP-utilisation figure divides by (Chowdhery et al. 2022, MFU).
//
// Counted ops (LibTorch's RecordFunction names; their shapes come from the op's inputs):
//   aten::mm, aten::addmm                 2 m k n
//   aten::bmm, aten::baddbmm              2 b m k n
//   aten::convolution                     2 N Cout prod(out) (Cin / groups) prod(kernel)   (transposed: by input)
//   aten::convolution_backward            that, once for the input gradient and once for the weight gradient
//   aten::_scaled_dot_product_{flash,efficient}_attention[_backward]   4 B H L S d (backward 2.5x), LibTorch >= 2.0
// Composite ops (linear, matmul, einsum, conv2d, ...) reach these, so each product is counted once.
// Needs torch.
#pragma once

#include <ATen/record_function.h>

#include <cstdint>

namespace asg {

// While alive, counts the ops above on every thread. One counter at a time (asg::Error(Internal) for a
// second); not copyable.
class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;

  // FLOPs counted so far.
  double flops() const;

 private:
  at::CallbackHandle handle_;
};

}  // namespace asg
