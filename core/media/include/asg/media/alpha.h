// Alpha: straight <-> premultiplied RGBA and compositing onto a background. Sticker frames are straight
// RGBA (asg/kinds/dataset.h); whatever compares or models colour premultiplies first, so the colour
// stored under a fully transparent pixel (which files fill arbitrarily) cannot matter.
// `channel_dim` is the dimension holding R, G, B, A (in that order). Torch, header-only.
#pragma once

#include <torch/torch.h>

#include <array>

namespace asg {

// rgb * a, a.
inline torch::Tensor premultiply(const torch::Tensor& rgba, int64_t channel_dim) {
  auto alpha = rgba.narrow(channel_dim, 3, 1);
  return torch::cat({rgba.narrow(channel_dim, 0, 3) * alpha, alpha}, channel_dim);
}

// rgb / a where a > min_alpha, else 0 (a fully transparent pixel has no colour), clamped to [0, 1].
inline torch::Tensor unpremultiply(const torch::Tensor& premultiplied, int64_t channel_dim, double min_alpha = 1e-3) {
  auto alpha = premultiplied.narrow(channel_dim, 3, 1);
  auto rgb = (premultiplied.narrow(channel_dim, 0, 3) / alpha.clamp_min(min_alpha)).clamp(0, 1);
  rgb = torch::where(alpha > min_alpha, rgb, torch::zeros_like(rgb));
  return torch::cat({rgb, alpha}, channel_dim);
}

// Straight RGBA over an opaque background colour (values in [0, 1]): rgb * a + background * (1 - a).
// Returns the 3 colour channels.
inline torch::Tensor composite_over(const torch::Tensor& rgba, int64_t channel_dim, const std::array<double, 3>& background) {
  auto alpha = rgba.narrow(channel_dim, 3, 1);
  std::vector<int64_t> shape(rgba.dim(), 1);
  shape[channel_dim] = 3;
  auto bg = torch::tensor({background[0], background[1], background[2]}, rgba.options()).reshape(shape);
  return rgba.narrow(channel_dim, 0, 3) * alpha + bg * (1 - alpha);
}

}  // namespace asg
