#include "asg/nn/scale_shift_silu.h"

#include "asg/error.h"

#ifdef ASG_WITH_CUDA
#include "scale_shift_silu_cuda.h"
#endif

namespace asg::nn {

namespace {

// scale / shift [N, C] -> broadcastable to x [N, C, ...].
torch::Tensor per_channel(const torch::Tensor& v, int64_t dims) {
  auto shape = v.sizes().vec();
  shape.resize(static_cast<size_t>(dims), 1);
  return v.view(shape);
}

void check_shapes(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& shift) {
  if (x.dim() < 2 || scale.dim() != 2 || shift.sizes() != scale.sizes() || scale.size(0) != x.size(0) ||
      scale.size(1) != x.size(1))
    throw internal_error("scale_shift_silu: x must be [N, C, ...] with scale and shift [N, C]");
}

#ifdef ASG_WITH_CUDA
struct FusedScaleShiftSilu : torch::autograd::Function<FusedScaleShiftSilu> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& scale,
                               const torch::Tensor& shift) {
    const auto dtype = torch::promote_types(x.scalar_type(), torch::promote_types(scale.scalar_type(), shift.scalar_type()));
    auto xc = x.to(dtype).contiguous();
    auto s = scale.to(torch::kFloat32).contiguous(), b = shift.to(torch::kFloat32).contiguous();
    ctx->save_for_backward({xc, s, b});
    ctx->saved_data["scale_dtype"] = static_cast<int64_t>(scale.scalar_type());
    ctx->saved_data["shift_dtype"] = static_cast<int64_t>(shift.scalar_type());
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    return cuda::scale_shift_silu_forward(xc, s, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    auto [gx, gs, gb] = cuda::scale_shift_silu_backward(grads[0].to(x.scalar_type()).contiguous(), x, saved[1], saved[2]);
    auto dtype = [&](const char* key) { return static_cast<torch::ScalarType>(ctx->saved_data[key].toInt()); };
    return {gx.to(dtype("x_dtype")), gs.view(saved[1].sizes()).to(dtype("scale_dtype")),
            gb.view(saved[2].sizes()).to(dtype("shift_dtype"))};
  }
};
#endif

}  // namespace

torch::Tensor scale_shift_silu_reference(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& shift) {
  check_shapes(x, scale, shift);
  return torch::silu(x * (1 + per_channel(scale, x.dim())) + per_channel(shift, x.dim()));
}

bool scale_shift_silu_fused(const torch::Device& device) {
#ifdef ASG_WITH_CUDA
  return device.is_cuda();
#else
  (void)device;
  return false;
#endif
}

torch::Tensor scale_shift_silu(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& shift) {
  check_shapes(x, scale, shift);
#ifdef ASG_WITH_CUDA
  if (x.is_cuda() && x.numel() > 0) return FusedScaleShiftSilu::apply(x, scale, shift);
#endif
  return scale_shift_silu_reference(x, scale, shift);
}

}  // namespace asg::nn
