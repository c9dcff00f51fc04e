// The fused scale-shift-SiLU kernels' launchers (scale_shift_silu_cuda.cu), declared for the autograd
// function in scale_shift_silu.cpp. Only compiled with the CUDA path (ASG_WITH_CUDA).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace asg::nn::cuda {

// x viewed as [rows = N*C, inner]; scale and shift as [rows]. Returns y.
at::Tensor scale_shift_silu_forward(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift);
// Returns (grad_x, grad_scale, grad_shift); the last two as [rows], float32 accumulated.
std::tuple<at::Tensor, at::Tensor, at::Tensor> scale_shift_silu_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                                         const at::Tensor& scale, const at::Tensor& shift);

}  // namespace asg::nn::cuda
