// Sinusoidal position features (Vaswani et al. 2017) for frame indices, shared by the temporal modules
// that tell attention the frame order. Needs torch.
#pragma once

#include <torch/torch.h>

#include <cmath>

namespace asg::nn {

// [frames, channels]: for each position, sin/cos pairs interleaved at frequencies 10000^(-2i/channels);
// channels may be odd (the last cosine is dropped).
inline torch::Tensor sinusoidal_positions(int64_t frames, int64_t channels) {
  auto pos = torch::arange(frames, torch::kFloat).unsqueeze(1);
  auto i = torch::arange((channels + 1) / 2, torch::kFloat);
  auto angles = pos * torch::exp(-std::log(10000.0) * 2 * i / channels).unsqueeze(0);  // [T, ceil(C/2)]
  return torch::stack({torch::sin(angles), torch::cos(angles)}, 2).reshape({frames, -1}).narrow(1, 0, channels);
}

}  // namespace asg::nn
