#include "diffusers_transformers.h"

namespace asg::modelscope {

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, const TransformerOptions& o) : cross_(o.cross_attention_dim > 0) {
  nn::DiffusersAttentionOptions self{.query_dim = dim, .cross_attention_dim = 0, .heads = o.heads, .dim_head = o.head_dim, .kernel = o.kernel};
  nn::DiffusersAttentionOptions second = self;
  second.cross_attention_dim = o.cross_attention_dim;
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)));
  attn1_ = register_module("attn1", nn::DiffusersAttention(self));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)));
  attn2_ = register_module("attn2", nn::DiffusersAttention(second));
  norm3_ = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)));
  ff_ = register_module("ff", nn::FeedForward(nn::FeedForwardOptions{dim, dim, 4}));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  auto h = x + attn1_->forward(norm1_->forward(x));
  h = h + attn2_->forward(norm2_->forward(h), cross_ ? context : torch::Tensor());
  return h + ff_->forward(norm3_->forward(h));
}

SpatialTransformerImpl::SpatialTransformerImpl(const TransformerOptions& o) : linear_(o.linear_projection) {
  const int64_t inner = o.heads * o.head_dim;
  norm_ = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.groups, o.channels).eps(1e-6)));
  if (linear_) {
    proj_in_ = torch::nn::AnyModule(register_module("proj_in", torch::nn::Linear(o.channels, inner)));
  } else {
    proj_in_ = torch::nn::AnyModule(register_module("proj_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.channels, inner, 1))));
  }
  blocks_ = register_module("transformer_blocks", torch::nn::ModuleList(BasicTransformerBlock(inner, o)));
  if (linear_) {
    proj_out_ = torch::nn::AnyModule(register_module("proj_out", torch::nn::Linear(inner, o.channels)));
  } else {
    proj_out_ = torch::nn::AnyModule(register_module("proj_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(inner, o.channels, 1))));
  }
}

torch::Tensor SpatialTransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  auto tokens = norm_->forward(x);
  if (!linear_) tokens = proj_in_.forward(tokens);
  tokens = tokens.permute({0, 2, 3, 1}).reshape({n, h * w, tokens.size(1)});
  if (linear_) tokens = proj_in_.forward(tokens);
  for (const auto& block : *blocks_) tokens = block->as<BasicTransformerBlockImpl>()->forward(tokens, context);
  torch::Tensor out;
  if (linear_) {
    out = proj_out_.forward(tokens);
    out = out.reshape({n, h, w, out.size(2)}).permute({0, 3, 1, 2});
  } else {
    out = proj_out_.forward(tokens.reshape({n, h, w, tokens.size(2)}).permute({0, 3, 1, 2}).contiguous());
  }
  return out + x;
}

TemporalTransformerImpl::TemporalTransformerImpl(const TransformerOptions& o) {
  const int64_t inner = o.heads * o.head_dim;
  TransformerOptions self_only = o;
  self_only.cross_attention_dim = 0;  // diffusers' double_self_attention: both attentions over the frames
  norm_ = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.groups, o.channels).eps(1e-6)));
  proj_in_ = register_module("proj_in", torch::nn::Linear(o.channels, inner));
  blocks_ = register_module("transformer_blocks", torch::nn::ModuleList(BasicTransformerBlock(inner, self_only)));
  proj_out_ = register_module("proj_out", torch::nn::Linear(inner, o.channels));
}

torch::Tensor TemporalTransformerImpl::forward(const torch::Tensor& x, int64_t frames) {
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3), b = x.size(0) / frames;
  auto clip = x.view({b, frames, c, h, w}).permute({0, 2, 1, 3, 4});  // [B, C, F, H, W]: the norm's statistics per clip
  auto tokens = norm_->forward(clip).permute({0, 3, 4, 2, 1}).reshape({b * h * w, frames, c});
  tokens = proj_in_->forward(tokens);
  for (const auto& block : *blocks_) tokens = block->as<BasicTransformerBlockImpl>()->forward(tokens);
  tokens = proj_out_->forward(tokens);
  auto out = tokens.reshape({b, h, w, frames, c}).permute({0, 3, 4, 1, 2}).reshape(x.sizes());
  return out + x;
}

}  // namespace asg::modelscope
