// diffusers' `Attention` (models/attention_processor.py) in the configuration video UNets and the released
// STI use: q/k/v projections (bias optional, off by default), heads x dim_head, scaled dot-product
// attention, and an output projection with bias; no norms, no residual, no rescaling. Parameters carry
// diffusers' names (to_q, to_k, to_v, to_out.0), so its weights load without renaming.
//
//   forward(x [N, L, query_dim])                  self-attention
//   forward(x, context [N, Lk, cross_attention_dim])  cross-attention: keys and values from `context`
#pragma once

#include <torch/torch.h>

#include "asg/nn/attention.h"

namespace asg::nn {

struct DiffusersAttentionOptions {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;  // 0: self-attention (keys and values from x)
  int64_t heads = 8;
  int64_t dim_head = 64;
  bool qkv_bias = false;            // diffusers' `bias`
  bool out_bias = true;
  AttentionOptions kernel;
};

class DiffusersAttentionImpl : public torch::nn::Module {
 public:
  explicit DiffusersAttentionImpl(const DiffusersAttentionOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});

 private:
  DiffusersAttentionOptions options_;
  torch::nn::Linear to_q_{nullptr}, to_k_{nullptr}, to_v_{nullptr};
  torch::nn::Sequential to_out_{nullptr};  // [Linear, Dropout]: the Linear is to_out.0
};
TORCH_MODULE(DiffusersAttention);

}  // namespace asg::nn
