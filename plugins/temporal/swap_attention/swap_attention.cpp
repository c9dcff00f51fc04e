// swap_attention: VideoFactory's swapped spatiotemporal cross-attention (Wang et al. 2023, "Swap Attention
// in Spatiotemporal Diffusions for Text-to-Video Generation"). Two streams meet in 3D windows (all T
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
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "asg/kinds/temporal.h"
#include "asg/nn/attention.h"
#include "asg/nn/positions.h"
#include "asg/plugin.h"

namespace asg::temporal {
namespace {

class SwapAttentionImpl final : public TemporalModule {
 public:
  SwapAttentionImpl(const Params& p, const TemporalContext& ctx)
      : heads_(p.integer("heads")), spatial_queries_(ctx.index % 2 == 0) {
    const int64_t c = ctx.channels;
    if (c % heads_ != 0)
      throw config_error(fmt::format("heads = {} does not divide the {} channels at insertion point '{}' (valid: a divisor "
                                     "of every level's channels, e.g. {})",
                                     heads_, c, ctx.name, std::gcd(c, heads_)));
    // The window divides the frame at every point: reduced to gcd(window, size) where it does not.
    window_h_ = std::gcd(p.integer("window"), ctx.height);
    window_w_ = std::gcd(p.integer("window"), ctx.width);
    options_.backend = nn::parse_attention_backend(p.str("attention_backend"));
    positions_ = register_buffer("positions", nn::sinusoidal_positions(ctx.frames, c));
    norm_temporal_ = register_module("norm_temporal", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
    temporal_qkv_ = register_module("temporal_qkv", torch::nn::Linear(torch::nn::LinearOptions(c, 3 * c).bias(false)));
    temporal_out_ = register_module("temporal_out", torch::nn::Linear(c, c));
    norm_query_ = register_module("norm_query", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
    norm_context_ = register_module("norm_context", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
    to_q_ = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(c, c).bias(false)));
    to_kv_ = register_module("to_kv", torch::nn::Linear(torch::nn::LinearOptions(c, 2 * c).bias(false)));
    proj_out_ = register_module("proj_out", torch::nn::Linear(c, c));
    torch::nn::init::zeros_(proj_out_->weight);
    torch::nn::init::zeros_(proj_out_->bias);
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    const int64_t b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4), d = c / heads_;
    if (t > positions_.size(0))
      throw data_error(fmt::format("swap_attention: clip has {} frames, the position table {}", t, positions_.size(0)));
    if (h % window_h_ != 0 || w % window_w_ != 0)
      throw data_error(fmt::format("swap_attention: a {}x{} frame where the module was built for windows of {}x{}", h, w, window_h_,
                                   window_w_));
    auto spatial = x.permute({0, 2, 3, 4, 1});  // [B, T, H, W, C]
    // The temporal stream: self-attention over the T frames of each position.
    auto seq = (norm_temporal_->forward(spatial) + positions_.narrow(0, 0, t).view({1, t, 1, 1, c}))
                   .permute({0, 2, 3, 1, 4})
                   .reshape({b * h * w, t, c});
    auto qkv = temporal_qkv_->forward(seq).view({b * h * w, t, 3, heads_, d}).permute({2, 0, 3, 1, 4});
    auto mixed = nn::attention(qkv[0], qkv[1], qkv[2], options_).transpose(1, 2).reshape({b, h, w, t, c});
    auto temporal = spatial + temporal_out_->forward(mixed).permute({0, 3, 1, 2, 4});
    // Swapped cross-attention inside 3D windows (all frames x window_h x window_w positions).
    const auto& query = spatial_queries_ ? spatial : temporal;
    const auto& context = spatial_queries_ ? temporal : spatial;
    const int64_t nh = h / window_h_, nw = w / window_w_, tokens = t * window_h_ * window_w_;
    auto to_windows = [&](const torch::Tensor& s) {  // [B, T, H, W, C] -> [B*nh*nw, tokens, C]
      return s.reshape({b, t, nh, window_h_, nw, window_w_, c}).permute({0, 2, 4, 1, 3, 5, 6}).reshape({b * nh * nw, tokens, c});
    };
    const int64_t n = b * nh * nw;
    auto q = to_q_->forward(norm_query_->forward(to_windows(query))).view({n, tokens, heads_, d}).transpose(1, 2);
    auto kv = to_kv_->forward(norm_context_->forward(to_windows(context))).view({n, tokens, 2, heads_, d}).permute({2, 0, 3, 1, 4});
    auto o = nn::attention(q, kv[0], kv[1], options_).transpose(1, 2).reshape({n, tokens, c});
    auto out = proj_out_->forward(o)
                   .view({b, nh, nw, t, window_h_, window_w_, c})
                   .permute({0, 6, 3, 1, 4, 2, 5})
                   .reshape({b, c, t, h, w});
    return x + out;
  }

 private:
  int64_t heads_, window_h_ = 1, window_w_ = 1;
  bool spatial_queries_;
  nn::AttentionOptions options_;
  torch::Tensor positions_;
  torch::nn::LayerNorm norm_temporal_{nullptr}, norm_query_{nullptr}, norm_context_{nullptr};
  torch::nn::Linear temporal_qkv_{nullptr}, temporal_out_{nullptr}, to_q_{nullptr}, to_kv_{nullptr}, proj_out_{nullptr};
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
