#include "asg/nn/diffusers_attention.h"

namespace asg::nn {

DiffusersAttentionImpl::DiffusersAttentionImpl(const DiffusersAttentionOptions& o) : options_(o) {
  const int64_t inner = o.heads * o.dim_head, kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : o.query_dim;
  to_q_ = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(o.query_dim, inner).bias(o.qkv_bias)));
  to_k_ = register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(kv_dim, inner).bias(o.qkv_bias)));
  to_v_ = register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(kv_dim, inner).bias(o.qkv_bias)));
  // The Dropout (p = 0 in every configuration used) only keeps diffusers' index for the projection.
  to_out_ = register_module("to_out", torch::nn::Sequential(torch::nn::Linear(torch::nn::LinearOptions(inner, o.query_dim).bias(o.out_bias)),
                                                            torch::nn::Dropout(0.0)));
}

torch::Tensor DiffusersAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const auto& kv_source = context.defined() ? context : x;
  const int64_t n = x.size(0), heads = options_.heads, d = options_.dim_head;
  auto split = [&](const torch::Tensor& t) { return t.view({n, t.size(1), heads, d}).transpose(1, 2); };  // [N, heads, L, d]
  auto o = attention(split(to_q_->forward(x)), split(to_k_->forward(kv_source)), split(to_v_->forward(kv_source)),
                     options_.kernel);
  return to_out_->ptr<torch::nn::LinearImpl>(0)->forward(o.transpose(1, 2).reshape({n, x.size(1), heads * d}));
}

}  // namespace asg::nn
