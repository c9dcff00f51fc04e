#include "asg/nn/temporal_conv_stack.h"

#include <fmt/format.h>

#include <numeric>

namespace asg::nn {

TemporalConvStackImpl::TemporalConvStackImpl(const TemporalConvStackOptions& o) {
  const int64_t c = o.channels, hidden = o.channels * o.width_multiplier;
  const int64_t groups = std::gcd(o.groups, c);
  for (int64_t i = 0; i < o.layers; ++i) {
    const int64_t in = i == 0 ? c : hidden, out = i == o.layers - 1 ? c : hidden;
    // diffusers' nn.Sequential per layer: GroupNorm, SiLU, [Dropout,] Conv3d. SiLU and Dropout hold no
    // parameters; they are there so the conv's index (and so its name) is diffusers'.
    Layer layer;
    layer.norm = torch::nn::GroupNorm(std::gcd(groups, in), in);
    layer.conv = torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, {3, 1, 1}).padding({1, 0, 0}));
    torch::nn::Sequential sequence(layer.norm, torch::nn::SiLU());
    if (i > 0) {
      layer.dropout = torch::nn::Dropout(o.dropout);
      sequence->push_back(layer.dropout);
    }
    sequence->push_back(layer.conv);
    register_module(fmt::format("conv{}", i + 1), sequence);
    if (i == o.layers - 1) {
      torch::nn::init::zeros_(layer.conv->weight);
      torch::nn::init::zeros_(layer.conv->bias);
    }
    layers_.push_back(layer);
  }
}

torch::Tensor TemporalConvStackImpl::forward(const torch::Tensor& x) {
  const auto sizes = x.sizes().vec();  // [B, C, T, H, W]
  auto h = x;
  for (Layer& layer : layers_) {
    h = torch::silu(layer.norm->forward(h));
    if (layer.dropout && layer.dropout->options.p() > 0) h = layer.dropout->forward(h);
    auto flat = h.reshape({sizes[0], h.size(1), sizes[2], sizes[3] * sizes[4]});
    h = torch::conv2d(flat, layer.conv->weight.squeeze(-1), layer.conv->bias, /*stride=*/1, /*padding=*/torch::IntArrayRef{1, 0})
            .view({sizes[0], -1, sizes[2], sizes[3], sizes[4]});
  }
  return x + h;
}

}  // namespace asg::nn
