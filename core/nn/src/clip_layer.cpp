#include "clip_layer.h"

#include <cmath>

namespace asg::nn {

ClipLayer::ClipLayer(const ClipLayerOptions& o) : heads(o.heads), activation(o.activation) {
  auto attention = register_module("self_attn", std::make_shared<torch::nn::Module>());
  q_proj = attention->register_module("q_proj", torch::nn::Linear(o.hidden_size, o.hidden_size));
  k_proj = attention->register_module("k_proj", torch::nn::Linear(o.hidden_size, o.hidden_size));
  v_proj = attention->register_module("v_proj", torch::nn::Linear(o.hidden_size, o.hidden_size));
  out_proj = attention->register_module("out_proj", torch::nn::Linear(o.hidden_size, o.hidden_size));
  layer_norm1 = register_module("layer_norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size}).eps(o.layer_norm_eps)));
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  fc1 = mlp->register_module("fc1", torch::nn::Linear(o.hidden_size, o.intermediate_size));
  fc2 = mlp->register_module("fc2", torch::nn::Linear(o.intermediate_size, o.hidden_size));
  layer_norm2 = register_module("layer_norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size}).eps(o.layer_norm_eps)));
}

torch::Tensor ClipLayer::forward(torch::Tensor x, const torch::Tensor& additive_mask) {
  const auto b = x.size(0), l = x.size(1), d = x.size(2), dh = d / heads;
  auto h = layer_norm1(x);
  auto split = [&](const torch::Tensor& t) { return t.view({b, l, heads, dh}).transpose(1, 2); };
  auto q = split(q_proj(h)), k = split(k_proj(h)), v = split(v_proj(h));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(dh)));
  if (additive_mask.defined()) scores = scores + additive_mask;
  auto attended = torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({b, l, d});
  x = x + out_proj(attended);
  return x + fc2(apply_text_activation(activation, fc1(layer_norm2(x))));
}

}  // namespace asg::nn
