#include "asg/nn/swap_attention.h"

#include <fmt/format.h>

#include <numeric>

#include "asg/error.h"
#include "asg/nn/positions.h"

namespace asg::nn {

SwapAttentionLayers::SwapAttentionLayers(torch::nn::Module& owner, const SwapAttentionOptions& options)
    : heads_(options.heads), spatial_queries_(options.spatial_queries), attention_(options.attention) {
  const int64_t c = options.channels;
  if (c % heads_ != 0)
    throw config_error(fmt::format("heads = {} does not divide the {} channels{} (valid: a divisor of every level's channels, "
                                   "e.g. {})",
                                   heads_, c, options.where.empty() ? "" : " at " + options.where, std::gcd(c, heads_)));
  // The window divides the frame at every point: reduced to gcd(window, size) where it does not.
  window_h_ = std::gcd(options.window, options.height);
  window_w_ = std::gcd(options.window, options.width);
  positions_ = owner.register_buffer("positions", sinusoidal_positions(options.frames, c));
  norm_temporal_ = owner.register_module("norm_temporal", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
  temporal_qkv_ = owner.register_module("temporal_qkv", torch::nn::Linear(torch::nn::LinearOptions(c, 3 * c).bias(false)));
  temporal_out_ = owner.register_module("temporal_out", torch::nn::Linear(c, c));
  norm_query_ = owner.register_module("norm_query", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
  norm_context_ = owner.register_module("norm_context", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
  to_q_ = owner.register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(c, c).bias(false)));
  to_kv_ = owner.register_module("to_kv", torch::nn::Linear(torch::nn::LinearOptions(c, 2 * c).bias(false)));
  proj_out_ = owner.register_module("proj_out", torch::nn::Linear(c, c));
  torch::nn::init::zeros_(proj_out_->weight);
  torch::nn::init::zeros_(proj_out_->bias);
}

torch::Tensor SwapAttentionLayers::forward(const torch::Tensor& x) {
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
  auto mixed = attention(qkv[0], qkv[1], qkv[2], attention_).transpose(1, 2).reshape({b, h, w, t, c});
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
  auto o = attention(q, kv[0], kv[1], attention_).transpose(1, 2).reshape({n, tokens, c});
  auto out = proj_out_->forward(o)
                 .view({b, nh, nw, t, window_h_, window_w_, c})
                 .permute({0, 6, 3, 1, 4, 2, 5})
                 .reshape({b, c, t, h, w});
  return x + out;
}

torch::Tensor SwapAttentionBlockImpl::forward(const torch::Tensor& x) {
  auto video = x.view({-1, frames_, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
  auto y = layers_.forward(video);
  return y.permute({0, 2, 1, 3, 4}).reshape(x.sizes());
}

}  // namespace asg::nn
