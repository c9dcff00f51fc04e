// modelscope_unet3d: ModelScope's text-to-video UNet (text-to-video-ms-1.7b), exact to diffusers'
// UNet3DConditionModel: the network the VSD2M baselines (VideoLDM-, VideoFactory-style) and the released STI
// code fine-tune. Every block, norm, head size and embedding is diffusers' (diffusers_unet3d.h), with
// diffusers' parameter names, so its weights load by name; where UNet3DConditionModel has a TemporalConvLayer
// (`temp_convs`, after every ResNet: 22 of them at the default depth) this backbone calls the experiment's
// temporal plugin, so temporal_conv (ModelScope's own layer), STI, temporal attention or none sit exactly there.
//
// Timestep: sinusoidal (flip_sin_to_cos, shift 0) -> Linear -> SiLU -> Linear, added in every ResNet. Text:
// the caption tokens, cross-attended by every spatial transformer, padding included (the reference passes no
// mask); the pooled caption is not used. Heads are attention_head_dim (64) wide: C / 64 heads per level
// (diffusers' num_attention_heads naming quirk); transformer_in has 8 heads of 64. Image conditioning, when
// the experiment has it, is the condition channels concatenated to conv_in's input.
#include <torch/torch.h>

#include "asg/kinds/backbone.h"
#include "asg/nn/module_state.h"
#include "asg/plugin.h"
#include "diffusers_unet3d.h"

namespace asg::modelscope {
namespace {

class ModelScopeUnet final : public Backbone {
 public:
  ModelScopeUnet(const Params& p, const BackboneContext& ctx)
      : body_(read_unet3d_settings(p, ctx, "UNet3DConditionModel"), ctx.channels + ctx.condition_channels, ctx.channels, ctx) {
    nn::adopt_children(*this, *body_);
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const TextEmbedding& text) override {
    const int64_t f = x.size(2);
    auto emb = body_->embed_timestep(t, x.scalar_type()).repeat_interleave(f, 0);
    return body_->run(to_frames(x), emb, text.tokens.repeat_interleave(f, 0), f);
  }

 private:
  UNet3DBody body_;
};

}  // namespace
}  // namespace asg::modelscope

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Backbone>(
    "modelscope_unet3d", "1.0.0",
    "ModelScope's text-to-video UNet, exact to diffusers' UNet3DConditionModel, with the experiment's temporal module in its temp_convs slots",
    asg::modelscope::unet3d_param_specs(),
    [](const asg::Params& p, const asg::BackboneContext& ctx) { return std::make_shared<asg::modelscope::ModelScopeUnet>(p, ctx); }))
