// VideoFactory's swapped spatiotemporal cross-attention (Wang et al. 2023, "Swap Attention in
// Spatiotemporal Diffusions for Text-to-Video Generation"), shared by the swap_attention temporal plugin and
// the backbones that put it where their temporal attention would be (unet3d temporal_transformer = "swap").
// Two streams meet in 3D windows (all T frames x a window of positions): the spatial stream (the block's own
// features) and a temporal stream (the same features after self-attention over frames at each position).
// Which stream asks the questions alternates between blocks, so each reinforces the other:
//
//   s = x                                          [B, T, H, W, C] tokens
//   t = s + Linear(SelfAttention_over_T(LayerNorm(s) + frame positions))
//   (q, kv) = (s, t) when spatial_queries, else (t, s)
//   y = x + Linear_out(CrossAttention(LayerNorm(q), LayerNorm(kv)) within T x window x window)
// Linear_out is zero-initialised: the layer starts as the identity. Needs torch.
#pragma once

#include <torch/torch.h>

#include <string>

#include "asg/nn/attention.h"

namespace asg::nn {

struct SwapAttentionOptions {
  int64_t channels = 0, frames = 0, height = 0, width = 0;
  int64_t heads = 4;
  int64_t window = 4;  // reduced to gcd(window, height) and gcd(window, width) where it does not divide
  bool spatial_queries = true;
  AttentionOptions attention;
  std::string where;  // for messages, e.g. "insertion point 'down1_0'"
};

// Not a module of its own: its layers are registered on `owner` (norm_temporal, temporal_qkv, temporal_out,
// norm_query, norm_context, to_q, to_kv, proj_out, and the buffer positions), so the owner's parameter names
// are those layers' names. asg::Error(Config) when heads does not divide channels.
class SwapAttentionLayers {
 public:
  SwapAttentionLayers(torch::nn::Module& owner, const SwapAttentionOptions& options);
  // x [B, C, T, H, W] -> the same
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t heads_, window_h_ = 1, window_w_ = 1;
  bool spatial_queries_;
  AttentionOptions attention_;
  torch::Tensor positions_;
  torch::nn::LayerNorm norm_temporal_{nullptr}, norm_query_{nullptr}, norm_context_{nullptr};
  torch::nn::Linear temporal_qkv_{nullptr}, temporal_out_{nullptr}, to_q_{nullptr}, to_kv_{nullptr}, proj_out_{nullptr};
};

// The layers as a module of their own on a UNet level's frames [B*T, C, H, W] (T = options.frames): what
// VideoFactory puts where ModelScope has its temporal transformer (unet3d, modelscope_unet3d).
class SwapAttentionBlockImpl : public torch::nn::Module {
 public:
  explicit SwapAttentionBlockImpl(const SwapAttentionOptions& options) : frames_(options.frames), layers_(*this, options) {}
  torch::Tensor forward(const torch::Tensor& frames_first);

 private:
  int64_t frames_;
  SwapAttentionLayers layers_;
};
TORCH_MODULE(SwapAttentionBlock);

}  // namespace asg::nn
