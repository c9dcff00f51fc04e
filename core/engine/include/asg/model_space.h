// Clips between the stickers datasets give (straight RGBA in [0, 1], frames first) and the diffusion model's space
// (premultiplied, channels first, in [-1, 1]).
// Host-only.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "asg/kinds/dataset.h"

namespace asg {

// Straight RGBA [B, T, 4, H, W] in [0,1]  <->  model space [B, 4, T, H, W] in [-1,1], premultiplied
// (so a transparent pixel is (-1,-1,-1,-1) whatever colour the file stored there).
torch::Tensor to_model_space(const torch::Tensor& rgba);
torch::Tensor from_model_space(const torch::Tensor& x);

// Stacks stickers into a straight-RGBA batch [B, T, 4, H, W].
torch::Tensor stack_frames(const std::vector<Sticker>& stickers);

}  // namespace asg
