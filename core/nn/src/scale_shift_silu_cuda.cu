// Fused scale-shift-SiLU on CUDA: y = silu(x * (1 + scale) + shift), one thread block per (n, c) row.
// The forward reads x once and writes y once; the backward reads grad_y and x once, writes grad_x, and
// reduces the row's scale and shift gradients in the same pass (float accumulation for every dtype).
#include "scale_shift_silu_cuda.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace asg::nn::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float z) { return 1.f / (1.f + __expf(-z)); }

template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ x, const float* __restrict__ scale,
                               const float* __restrict__ shift, scalar_t* __restrict__ y, int64_t inner) {
  const int64_t row = blockIdx.x;
  const float a = 1.f + scale[row], b = shift[row];
  const scalar_t* xr = x + row * inner;
  scalar_t* yr = y + row * inner;
  for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
    const float z = static_cast<float>(xr[i]) * a + b;
    yr[i] = static_cast<scalar_t>(z * sigmoid(z));
  }
}

// Sum of v over the block; the result is valid in thread 0.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = threadIdx.x < blockDim.x / 32 ? shared[lane] : 0.f;
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  __syncthreads();
  return v;
}

template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ grad_y, const scalar_t* __restrict__ x,
                                const float* __restrict__ scale, const float* __restrict__ shift,
                                scalar_t* __restrict__ grad_x, float* __restrict__ grad_scale,
                                float* __restrict__ grad_shift, int64_t inner) {
  __shared__ float shared[kThreads / 32];
  const int64_t row = blockIdx.x;
  const float a = 1.f + scale[row], b = shift[row];
  const scalar_t* gr = grad_y + row * inner;
  const scalar_t* xr = x + row * inner;
  scalar_t* gxr = grad_x + row * inner;
  float sum_scale = 0.f, sum_shift = 0.f;
  for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
    const float xv = static_cast<float>(xr[i]);
    const float z = xv * a + b;
    const float s = sigmoid(z);
    const float gz = static_cast<float>(gr[i]) * s * (1.f + z * (1.f - s));  // d silu(z) / dz = s (1 + z (1 - s))
    gxr[i] = static_cast<scalar_t>(gz * a);
    sum_scale += gz * xv;
    sum_shift += gz;
  }
  sum_scale = block_sum(sum_scale, shared);
  sum_shift = block_sum(sum_shift, shared);
  if (threadIdx.x == 0) {
    grad_scale[row] = sum_scale;
    grad_shift[row] = sum_shift;
  }
}

void check_inputs(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift) {
  TORCH_CHECK(x.is_cuda() && x.is_contiguous(), "scale_shift_silu (CUDA): x must be a contiguous CUDA tensor");
  TORCH_CHECK(scale.scalar_type() == at::kFloat && shift.scalar_type() == at::kFloat && scale.is_contiguous() &&
                  shift.is_contiguous(),
              "scale_shift_silu (CUDA): scale and shift must be contiguous float32");
  TORCH_CHECK(scale.numel() == shift.numel() && scale.numel() > 0 && x.numel() % scale.numel() == 0,
              "scale_shift_silu (CUDA): x's rows must match scale and shift");
}

}  // namespace

at::Tensor scale_shift_silu_forward(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift) {
  check_inputs(x, scale, shift);
  const c10::cuda::CUDAGuard guard(x.device());
  auto y = at::empty_like(x);
  const int64_t rows = scale.numel(), inner = x.numel() / rows;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "scale_shift_silu_forward", [&] {
    forward_kernel<scalar_t><<<rows, kThreads, 0, stream>>>(x.data_ptr<scalar_t>(), scale.data_ptr<float>(),
                                                            shift.data_ptr<float>(), y.data_ptr<scalar_t>(), inner);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> scale_shift_silu_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                                         const at::Tensor& scale, const at::Tensor& shift) {
  check_inputs(x, scale, shift);
  TORCH_CHECK(grad_y.sizes() == x.sizes() && grad_y.scalar_type() == x.scalar_type() && grad_y.is_contiguous(),
              "scale_shift_silu (CUDA): grad_y must be contiguous and match x");
  const c10::cuda::CUDAGuard guard(x.device());
  auto grad_x = at::empty_like(x);
  auto grad_scale = at::empty_like(scale), grad_shift = at::empty_like(shift);
  const int64_t rows = scale.numel(), inner = x.numel() / rows;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "scale_shift_silu_backward", [&] {
    backward_kernel<scalar_t><<<rows, kThreads, 0, stream>>>(
        grad_y.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), scale.data_ptr<float>(), shift.data_ptr<float>(),
        grad_x.data_ptr<scalar_t>(), grad_scale.data_ptr<float>(), grad_shift.data_ptr<float>(), inner);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {grad_x, grad_scale, grad_shift};
}

}  // namespace asg::nn::cuda
