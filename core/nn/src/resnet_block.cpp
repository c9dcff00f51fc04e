#include "asg/nn/resnet_block.h"

namespace asg::nn {

ResnetBlockImpl::ResnetBlockImpl(const ResnetBlockOptions& o) {
  const int64_t in = o.in_channels, out = o.out_channels > 0 ? o.out_channels : o.in_channels;
  auto conv3x3 = [](int64_t i, int64_t j) { return torch::nn::Conv2d(torch::nn::Conv2dOptions(i, j, 3).padding(1)); };
  // Registered in diffusers' order, so that a seeded construction draws the same initial weights.
  norm1_ = register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.groups, in).eps(o.eps)));
  conv1_ = register_module("conv1", conv3x3(in, out));
  if (o.temb_channels > 0) time_emb_proj_ = register_module("time_emb_proj", torch::nn::Linear(o.temb_channels, out));
  norm2_ = register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.groups, out).eps(o.eps)));
  dropout_ = register_module("dropout", torch::nn::Dropout(o.dropout));
  conv2_ = register_module("conv2", conv3x3(out, out));
  if (in != out) conv_shortcut_ = register_module("conv_shortcut", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
}

torch::Tensor ResnetBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  auto h = conv1_->forward(torch::silu(norm1_->forward(x)));
  if (time_emb_proj_ && temb.defined()) h = h + time_emb_proj_->forward(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = torch::silu(norm2_->forward(h));
  if (dropout_->options.p() > 0) h = dropout_->forward(h);
  h = conv2_->forward(h);
  return (conv_shortcut_ ? conv_shortcut_->forward(x) : x) + h;
}

}  // namespace asg::nn
