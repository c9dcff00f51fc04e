// diffusers' `ResnetBlock2D` (models/resnet.py) with its defaults: GroupNorm -> SiLU -> conv3x3 ->
// [+ Linear(SiLU(temb)) per channel] -> GroupNorm -> SiLU -> Dropout -> conv3x3, plus the input (through a
// 1x1 conv_shortcut when the channel count changes). Parameter names are diffusers' (norm1, conv1,
// time_emb_proj, norm2, conv2, conv_shortcut). Used by the ModelScope-layout UNet and STI's detail branch.
#pragma once

#include <torch/torch.h>

namespace asg::nn {

struct ResnetBlockOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;      // 0: in_channels
  int64_t temb_channels = 0;     // 0: no time embedding (diffusers' temb_channels = None)
  int64_t groups = 32;           // GroupNorm groups of both norms
  double eps = 1e-6;             // diffusers' default
  double dropout = 0.0;
};

class ResnetBlockImpl : public torch::nn::Module {
 public:
  explicit ResnetBlockImpl(const ResnetBlockOptions& options);
  // x [N, in, H, W], temb [N, temb_channels] (undefined when temb_channels = 0) -> [N, out, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb = {});

  torch::nn::Conv2d conv2() const { return conv2_; }

 private:
  torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv_shortcut_{nullptr};
  torch::nn::Linear time_emb_proj_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(ResnetBlock);

}  // namespace asg::nn
