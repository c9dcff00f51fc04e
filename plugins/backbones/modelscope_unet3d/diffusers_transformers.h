// diffusers' transformer blocks as ModelScope's UNet3DConditionModel uses them, with diffusers' parameter
// names, so its weights load without renaming:
//   BasicTransformerBlock     LayerNorm -> self-attention, LayerNorm -> attention (cross to the text, or
//                             self again), LayerNorm -> GEGLU feed-forward, each with a residual
//   SpatialTransformer        Transformer2DModel: GroupNorm (eps 1e-6) -> proj_in (1x1 conv or Linear) ->
//                             blocks over each frame's H*W tokens -> proj_out, plus the input
//   TemporalTransformer       TransformerTemporalModel: GroupNorm over each clip -> Linear -> blocks over each
//                             pixel's F tokens (both attentions self) -> Linear, plus the input
#pragma once

#include <torch/torch.h>

#include "asg/nn/attention.h"
#include "asg/nn/diffusers_attention.h"
#include "asg/nn/feed_forward.h"

namespace asg::modelscope {

struct TransformerOptions {
  int64_t channels = 0;          // in_channels
  int64_t heads = 8;
  int64_t head_dim = 64;         // inner dim = heads x head_dim
  int64_t cross_attention_dim = 0;  // 0: the second attention is self-attention (double_self_attention)
  int64_t groups = 32;
  bool linear_projection = false;   // SpatialTransformer: proj_in/out as Linear (true) or 1x1 conv
  nn::AttentionOptions kernel;
};

class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  BasicTransformerBlockImpl(int64_t dim, const TransformerOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});  // [N, L, dim]

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr};
  nn::DiffusersAttention attn1_{nullptr}, attn2_{nullptr};
  nn::FeedForward ff_{nullptr};
  bool cross_;
};
TORCH_MODULE(BasicTransformerBlock);

class SpatialTransformerImpl : public torch::nn::Module {
 public:
  explicit SpatialTransformerImpl(const TransformerOptions& o);
  // x [N, C, H, W] (N = B*F), context [N, L, D] -> [N, C, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

 private:
  bool linear_;
  torch::nn::GroupNorm norm_{nullptr};
  torch::nn::AnyModule proj_in_, proj_out_;
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(SpatialTransformer);

class TemporalTransformerImpl : public torch::nn::Module {
 public:
  explicit TemporalTransformerImpl(const TransformerOptions& o);
  // x [B*F, C, H, W] -> same; attends over the F frames at each pixel of each clip
  torch::Tensor forward(const torch::Tensor& x, int64_t frames);

 private:
  torch::nn::GroupNorm norm_{nullptr};
  torch::nn::Linear proj_in_{nullptr}, proj_out_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(TemporalTransformer);

}  // namespace asg::modelscope
