// Temporal-module plugins: the layer a backbone places after each of its ResNet blocks to mix
// information across frames (ModelScope's temporal conv, the paper's STI layer, or nothing).
//
// Contract
// - forward() takes and returns [B, C, T, H, W] with the same shape, dtype and device.
// - A module must start as (or close to) the identity on its input so that swapping temporal modules in
//   an ablation does not change the backbone's behaviour at initialisation: zero-initialise the last
//   layer of a residual branch, or gate it with a weight that starts at 0.
// - The backbone creates one instance per insertion point through BackboneContext::make_temporal;
//   TemporalContext says the channel count and frame count at that point.
#pragma once

#include <torch/torch.h>

namespace asg {

struct TemporalContext {
  int64_t channels = 0;
  int64_t frames = 0;
  int64_t height = 0;  // spatial size at the insertion point
  int64_t width = 0;
};

class TemporalModule : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;  // required
};

}  // namespace asg
