// diffusers' `FeedForward` (models/attention.py): in -> activation projection -> Linear(inner, out), with
// inner = mult x in. The activation is GEGLU by default (proj: Linear(in, 2 inner); h * GELU(gate), exact
// erf GELU), or plain GELU (proj: Linear(in, inner)). Parameter names are diffusers' (net.0.proj, net.2),
// so its weights load without renaming. Used by transformer blocks and by STI's per-pixel MLP fusion.
#pragma once

#include <torch/torch.h>

namespace asg::nn {

enum class FeedForwardActivation { Geglu, Gelu };

struct FeedForwardOptions {
  int64_t dim = 0;
  int64_t dim_out = 0;  // 0: dim
  int64_t mult = 4;
  FeedForwardActivation activation = FeedForwardActivation::Geglu;
};

class FeedForwardImpl : public torch::nn::Module {
 public:
  explicit FeedForwardImpl(const FeedForwardOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // [..., dim] -> [..., dim_out]

 private:
  FeedForwardActivation activation_;
  torch::nn::Linear proj_{nullptr}, out_{nullptr};
};
TORCH_MODULE(FeedForward);

}  // namespace asg::nn
