// Test plugin: a backbone whose one operation is a custom kernel written for float and double only, as
// a researcher's hand-written CPU or CUDA kernel often is. Under bfloat16 autocast its input arrives in
// bfloat16 (from a Linear), and the kernel has no bfloat16 instantiation: `[runtime] precision = "bf16"`
// must be refused before anything is recorded, naming the backbone's error.
#include <ATen/Dispatch.h>

#include "asg/kinds/backbone.h"
#include "asg/plugin.h"

namespace {

// y = x * x behind the dispatch of a kernel instantiated for float and double only (AT_DISPATCH_FLOATING_TYPES),
// as a hand-written kernel's entry point is; the arithmetic goes through ATen so that the model also trains.
torch::Tensor square_float_only(const torch::Tensor& x) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "square_float_only", [&] {});
  return x * x;
}

class FloatOnlyBackbone final : public asg::Backbone {
 public:
  explicit FloatOnlyBackbone(const asg::BackboneContext& ctx)
      : mix_(register_module("mix", torch::nn::Linear(ctx.channels + ctx.condition_channels, ctx.channels))) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor&, const asg::TextEmbedding&) override {
    // Channels last for the Linear, back to [B, C, T, H, W] after.
    auto h = mix_->forward(x.movedim(1, -1));
    return square_float_only(h).movedim(-1, 1);
  }

 private:
  torch::nn::Linear mix_;
};

}  // namespace

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Backbone>(
    "float_only", "0.1.0", "test plugin: a backbone whose custom kernel has no bfloat16 instantiation",
    std::vector<asg::ParamSpec>{},
    [](const asg::Params&, const asg::BackboneContext& ctx) { return std::make_shared<FloatOnlyBackbone>(ctx); }))
