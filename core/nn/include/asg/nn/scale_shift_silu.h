// silu(x * (1 + scale) + shift): the FiLM-then-SiLU step of a time-conditioned ResNet block (the UNet's
// norm2 -> scale-shift -> SiLU), as one operation.
//
//   x: [N, C, ...]   scale, shift: [N, C]   -> the shape and dtype of x
//
// On a CUDA tensor, in a build with the CUDA path compiled (ASG_WITH_CUDA), one fused kernel reads x once
// and writes the output once (the composite writes two intermediates and reads them back), and the
// backward pass is one kernel that also reduces the scale and shift gradients. Everywhere else it is the
// composite of ATen operations, which is also the reference the fused kernel is tested against.
#pragma once

#include <torch/torch.h>

namespace asg::nn {

torch::Tensor scale_shift_silu(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& shift);

// The ATen composite, whatever the device (the reference for the fused kernel's tests).
torch::Tensor scale_shift_silu_reference(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& shift);

// Whether scale_shift_silu runs the fused CUDA kernel for tensors on `device` in this build.
bool scale_shift_silu_fused(const torch::Device& device);

}  // namespace asg::nn
