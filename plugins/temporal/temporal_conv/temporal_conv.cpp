// temporal_conv: ModelScope's TemporalConvLayer (text-to-video-ms-1.7b, diffusers
// TemporalConvLayer): four GroupNorm -> SiLU -> [Dropout] -> Conv3d (3,1,1) layers over time, the last
// zero-initialised, added to the input. It therefore starts as the identity.
#include <fmt/format.h>
#include <torch/torch.h>

#include <numeric>

#include "asg/kinds/temporal.h"
#include "asg/plugin.h"

namespace asg::temporal {
namespace {

class TemporalConvImpl final : public TemporalModule {
 public:
  TemporalConvImpl(const Params& p, const TemporalContext& ctx) {
    const int64_t c = ctx.channels;
    const int64_t hidden = c * p.integer("width_multiplier");
    const int64_t layers = p.integer("layers");
    const double dropout = p.real("dropout");
    // GroupNorm needs groups | channels; fall back to the largest common divisor (ModelScope uses 32).
    const int64_t groups = std::gcd(p.integer("groups"), c);
    for (int64_t i = 0; i < layers; ++i) {
      int64_t in = i == 0 ? c : hidden, out = i == layers - 1 ? c : hidden;
      torch::nn::Sequential block(torch::nn::GroupNorm(torch::nn::GroupNormOptions(std::gcd(groups, in), in)),
                                  torch::nn::SiLU());
      if (i > 0 && dropout > 0) block->push_back(torch::nn::Dropout(dropout));
      auto conv = torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, {3, 1, 1}).padding({1, 0, 0}));
      if (i == layers - 1) {
        torch::nn::init::zeros_(conv->weight);
        torch::nn::init::zeros_(conv->bias);
      }
      block->push_back(conv);
      blocks_.push_back(register_module(fmt::format("conv{}", i + 1), block));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    auto h = x;
    for (auto& b : blocks_) h = b->forward(h);
    return x + h;
  }

 private:
  std::vector<torch::nn::Sequential> blocks_;
};

}  // namespace
}  // namespace asg::temporal

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TemporalModule>(
    "temporal_conv", "1.0.0", "ModelScope temporal conv: 4 x (GroupNorm, SiLU, Conv3d (3,1,1)), last zero-init, residual",
    std::vector<asg::ParamSpec>{
        asg::int_param("layers", 4, "GroupNorm-SiLU-Conv3d layers (ModelScope: 4)").range(1, 16),
        asg::int_param("groups", 32, "GroupNorm groups; reduced to gcd(groups, channels) for narrow layers").range(1, 1024),
        asg::int_param("width_multiplier", 1, "hidden channels = channels x this").range(1, 16),
        asg::float_param("dropout", 0.0, "dropout before the convs of layers 2.. (ModelScope: 0.1 in training)").range(0, 1),
    },
    [](const asg::Params& p, const asg::TemporalContext& ctx) {
      return std::make_shared<asg::temporal::TemporalConvImpl>(p, ctx);
    }))
