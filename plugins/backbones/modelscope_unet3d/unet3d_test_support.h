// Test support for the backbones on diffusers' UNet body (modelscope_unet3d, i2vgenxl_unet): the backbone
// context with ModelScope's temporal conv in every slot, as diffusers' TemporalConvLayer is built there.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "asg/kinds/backbone.h"
#include "asg/nn/module_state.h"
#include "asg/nn/temporal_conv_stack.h"

namespace asg::testing {

// ModelScope's temporal conv in a slot, built and named as the temporal_conv plugin builds it ("conv1.0.weight").
struct ModelScopeTemporalConv : TemporalModule {
  ModelScopeTemporalConv(int64_t channels, int64_t groups) : stack(nn::TemporalConvStackOptions{channels, 4, groups, 1, 0.1}) {
    nn::adopt_children(*this, *stack);
  }
  torch::Tensor forward(const torch::Tensor& x) override { return stack->forward(x); }
  nn::TemporalConvStack stack;
};

// `seen`, when given, collects every slot the backbone asks for.
inline BackboneContext unet3d_context(int64_t channels, int64_t condition, int64_t frames, int64_t h, int64_t w, int64_t text_dim,
                                      int64_t groups, std::vector<TemporalContext>* seen = nullptr) {
  BackboneContext ctx;
  ctx.channels = channels;
  ctx.condition_channels = condition;
  ctx.frames = frames;
  ctx.height = h;
  ctx.width = w;
  ctx.text_dim = text_dim;
  ctx.make_temporal = [groups, seen](const TemporalContext& tc) -> std::shared_ptr<TemporalModule> {
    if (seen) seen->push_back(tc);
    return std::make_shared<ModelScopeTemporalConv>(tc.channels, groups);
  };
  return ctx;
}

}  // namespace asg::testing
