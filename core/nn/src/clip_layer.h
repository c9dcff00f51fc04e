// One pre-LayerNorm CLIP transformer layer, x + attn(ln1(x)) then x + mlp(ln2(x)), under transformers' names
// (self_attn.{q,k,v,out}_proj, layer_norm1, mlp.fc1/fc2, layer_norm2): shared by the text and the image tower.
// Private to asg_nn.
#pragma once

#include <torch/torch.h>

#include "asg/nn/clip_text_model.h"

namespace asg::nn {

struct ClipLayerOptions {
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t heads = 8;
  double layer_norm_eps = 1e-5;
  TextActivation activation = TextActivation::QuickGelu;
};

struct ClipLayer : torch::nn::Module {
  explicit ClipLayer(const ClipLayerOptions& o);

  // additive_mask [B, 1, L, L]: 0 where a query may look, the dtype's lowest value elsewhere; undefined:
  // every query sees every key (the image tower).
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& additive_mask = {});

  int64_t heads;
  TextActivation activation;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr}, fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
};

}  // namespace asg::nn
