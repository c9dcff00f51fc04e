// Straight RGBA <-> premultiplied model space, and stacking stickers into a batch.
#include "asg/model_space.h"

#include "asg/media/alpha.h"

namespace asg {

torch::Tensor to_model_space(const torch::Tensor& rgba) {
  // [B, T, 4, H, W] straight -> premultiplied -> [B, 4, T, H, W] in [-1, 1]
  return (premultiply(rgba, 2) * 2 - 1).permute({0, 2, 1, 3, 4}).contiguous();
}

torch::Tensor from_model_space(const torch::Tensor& x) {
  auto y = ((x.permute({0, 2, 1, 3, 4}) + 1) / 2).clamp(0, 1);
  return unpremultiply(y, 2).contiguous();
}

torch::Tensor stack_frames(const std::vector<Sticker>& stickers) {
  std::vector<torch::Tensor> frames;
  frames.reserve(stickers.size());
  for (const auto& s : stickers) frames.push_back(s.frames);
  return torch::stack(frames);
}

}  // namespace asg
