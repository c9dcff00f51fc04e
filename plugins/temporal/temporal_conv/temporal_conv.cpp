// temporal_conv: ModelScope's TemporalConvLayer (text-to-video-ms-1.7b, diffusers
// TemporalConvLayer): four GroupNorm -> SiLU -> [Dropout] -> Conv3d (3,1,1) layers over time, the last
// zero-initialised, added to the input. It therefore starts as the identity. The layer itself is
// asg::nn::TemporalConvStack, which STI's detail branch shares.
#include <torch/torch.h>

#include "asg/kinds/temporal.h"
#include "asg/nn/module_state.h"
#include "asg/nn/temporal_conv_stack.h"
#include "asg/plugin.h"

namespace asg::temporal {
namespace {

class TemporalConvImpl final : public TemporalModule {
 public:
  TemporalConvImpl(const Params& p, const TemporalContext& ctx)
      : stack_(nn::TemporalConvStackOptions{ctx.channels, p.integer("layers"), p.integer("groups"), p.integer("width_multiplier"),
                                            p.real("dropout")}) {
    // The stack's layers hang directly off this module, not under a child of their own, so the parameter
    // names are ModelScope's (conv1.0.weight, ..., conv4.3.bias): diffusers' `temp_convs.N.*` load as they are.
    nn::adopt_children(*this, *stack_);
  }

  torch::Tensor forward(const torch::Tensor& x) override { return stack_->forward(x); }

 private:
  nn::TemporalConvStack stack_;
};

}  // namespace
}  // namespace asg::temporal

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TemporalModule>(
    "temporal_conv", "1.2.0", "ModelScope temporal conv: 4 x (GroupNorm, SiLU, Conv3d (3,1,1)), last zero-init, residual",
    std::vector<asg::ParamSpec>{
        asg::int_param("layers", 4, "GroupNorm-SiLU-Conv3d layers (ModelScope: 4)").range(1, 16),
        asg::int_param("groups", 32, "GroupNorm groups; reduced to gcd(groups, channels) for narrow layers").range(1, 1024),
        asg::int_param("width_multiplier", 1, "hidden channels = channels x this").range(1, 16),
        asg::float_param("dropout", 0.0, "dropout before the convs of layers 2.. (ModelScope: 0.1 in training)").range(0, 1),
    },
    [](const asg::Params& p, const asg::TemporalContext& ctx) {
      return std::make_shared<asg::temporal::TemporalConvImpl>(p, ctx);
    }))
