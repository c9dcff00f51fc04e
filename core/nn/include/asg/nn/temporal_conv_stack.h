// ModelScope's TemporalConvLayer (text-to-video-ms-1.7b; diffusers TemporalConvLayer) as a building
// block: `layers` x (GroupNorm -> SiLU -> [Dropout] -> Conv3d (3,1,1)) over [B, C, T, H, W], the last
// conv zero-initialised, added to the input, so it starts as the identity. Used by the temporal_conv
// plugin and by STI's detail branch.
//
// Parameters are named as diffusers names them (conv1.0 = GroupNorm, conv1.2 = Conv3d; conv2.0 / conv2.3
// and on, with a Dropout at index 2), so ModelScope's `temp_convs` weights load without renaming.
//
// The (3,1,1) convolution runs as a Conv2d with a (3,1) kernel over [B, C, T, H*W]: the same weights
// and the same result, but oneDNN takes a much faster path for the 2D weight gradient (measured 1.07x on
// the whole quickstart training step, LibTorch 1.13). The parameters live in real Conv3d modules
// ([out, in, 3, 1, 1]), so initialisation and checkpoints keep ModelScope's layout.
#pragma once

#include <torch/torch.h>

namespace asg::nn {

struct TemporalConvStackOptions {
  int64_t channels = 0;
  int64_t layers = 4;
  int64_t groups = 32;            // reduced to gcd(groups, channels) for narrow layers
  int64_t width_multiplier = 1;   // hidden channels = channels x this
  double dropout = 0.0;           // before the convs of layers 2..
};

class TemporalConvStackImpl : public torch::nn::Module {
 public:
  explicit TemporalConvStackImpl(const TemporalConvStackOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, T, H, W] -> same

 private:
  struct Layer {
    torch::nn::GroupNorm norm{nullptr};
    torch::nn::Dropout dropout{nullptr};  // layers 2..
    torch::nn::Conv3d conv{nullptr};      // weight [out, in, 3, 1, 1]
  };
  std::vector<Layer> layers_;
};
TORCH_MODULE(TemporalConvStack);

}  // namespace asg::nn
