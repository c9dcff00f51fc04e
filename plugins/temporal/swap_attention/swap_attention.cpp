// swap_attention: VideoFactory's swapped spatiotemporal cross-attention (Wang et al. 2023, "Swap Attention
// in Spatiotemporal Diffusions for Text-to-Video Generation"), computed by asg/nn/swap_attention.h (which
// unet3d's temporal_transformer = "swap" shares). Two streams meet in 3D windows (all T
// frames x a window of positions): the spatial stream (the block's own features) and a temporal stream
// (the same features after self-attention over frames at each position). At every other insertion point
// the "query" role swaps: at even points the spatial stream queries the temporal one, at odd points the
// temporal stream queries the spatial one, so each reinforces the other through the network.
//
//   s = x                                          [B, T, H, W, C] tokens
//   t = s + Linear(SelfAttention_over_T(LayerNorm(s) + frame positions))
//   (q, kv) = (s, t) at even points, (t, s) at odd points   (TemporalContext::index)
//   y = x + Linear_out(CrossAttention(LayerNorm(q), LayerNorm(kv)) within T x window x window)
// Linear_out is zero-initialised: the module starts as the identity.
#include <torch/torch.h>

#include "asg/kinds/temporal.h"
#include "asg/nn/swap_attention.h"
#include "asg/plugin.h"

namespace asg::temporal {
namespace {

nn::SwapAttentionOptions options_for(const Params& p, const TemporalContext& ctx) {
  nn::SwapAttentionOptions o;
  o.channels = ctx.channels;
  o.frames = ctx.frames;
  o.height = ctx.height;
  o.width = ctx.width;
  o.heads = p.integer("heads");
  o.window = p.integer("window");
  o.spatial_queries = ctx.index % 2 == 0;  // the query role alternates between insertion points
  o.attention.backend = nn::parse_attention_backend(p.str("attention_backend"));
  o.where = "insertion point '" + ctx.name + "'";
  return o;
}

class SwapAttentionImpl final : public TemporalModule {
 public:
  SwapAttentionImpl(const Params& p, const TemporalContext& ctx) : layers_(*this, options_for(p, ctx)) {}
  torch::Tensor forward(const torch::Tensor& x) override { return layers_.forward(x); }

 private:
  nn::SwapAttentionLayers layers_;
};

}  // namespace
}  // namespace asg::temporal

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TemporalModule>(
    "swap_attention", "1.0.0",
    "VideoFactory swapped spatiotemporal cross-attention in 3D windows; the query role alternates between insertion points",
    std::vector<asg::ParamSpec>{
        asg::int_param("heads", 4, "attention heads; must divide the channels at every insertion point").range(1, 256),
        asg::int_param("window", 4, "spatial window side (with all frames: a T x window x window 3D window); reduced to "
                                    "gcd(window, size) where it does not divide the frame")
            .range(1, 1024),
        asg::enum_param("attention_backend", asg::nn::AttentionBackend::Auto, asg::nn::attention_backend_names(),
                        "attention kernel (see asg/nn/attention.h)"),
    },
    [](const asg::Params& p, const asg::TemporalContext& ctx) {
      return std::make_shared<asg::temporal::SwapAttentionImpl>(p, ctx);
    }))
