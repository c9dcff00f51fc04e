#include "asg/nn/clip_text_model.h"

#include <fmt/format.h>

#include <limits>

#include "asg/error.h"
#include "clip_layer.h"

namespace asg::nn {

TextActivation text_activation_from_name(const std::string& name) {
  if (name == "quick_gelu") return TextActivation::QuickGelu;
  if (name == "gelu") return TextActivation::Gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return TextActivation::GeluTanh;
  if (name == "relu") return TextActivation::Relu;
  throw config_error(fmt::format("activation '{}' is not one of quick_gelu, gelu, gelu_new, gelu_pytorch_tanh, relu", name));
}

torch::Tensor apply_text_activation(TextActivation activation, const torch::Tensor& x) {
  switch (activation) {
    case TextActivation::QuickGelu: return x * torch::sigmoid(1.702 * x);
    case TextActivation::Gelu: return torch::gelu(x);
    case TextActivation::GeluTanh: return torch::gelu(x, "tanh");
    case TextActivation::Relu: return torch::relu(x);
  }
  return x;
}

ClipTextModelImpl::ClipTextModelImpl(const ClipTextOptions& options) : options_(options) {
  if (options.hidden_size % options.heads != 0)
    throw config_error(fmt::format("CLIP text: hidden size {} is not divisible by {} heads", options.hidden_size, options.heads));
  text_model_ = register_module("text_model", std::make_shared<torch::nn::Module>());
  auto embeddings = text_model_->register_module("embeddings", std::make_shared<torch::nn::Module>());
  token_embedding_ = embeddings->register_module("token_embedding", torch::nn::Embedding(options.vocab_size, options.hidden_size));
  position_embedding_ = embeddings->register_module("position_embedding", torch::nn::Embedding(options.max_positions, options.hidden_size));
  auto encoder = text_model_->register_module("encoder", std::make_shared<torch::nn::Module>());
  auto layers = encoder->register_module("layers", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < options.layers; ++i)
    layers_.push_back(layers->register_module(std::to_string(i), std::make_shared<ClipLayer>(ClipLayerOptions{options.hidden_size, options.intermediate_size, options.heads,
                                                                                                 options.layer_norm_eps, options.activation})));
  final_layer_norm_ = text_model_->register_module(
      "final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.hidden_size}).eps(options.layer_norm_eps)));
  if (options.projection_dim > 0)
    text_projection_ = register_module("text_projection", torch::nn::Linear(torch::nn::LinearOptions(options.hidden_size, options.projection_dim).bias(false)));
}

ClipTextOutput ClipTextModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& attention_mask, int64_t skip_last_layers) {
  const auto b = ids.size(0), l = ids.size(1);
  if (l > options_.max_positions)
    throw config_error(fmt::format("CLIP text: {} tokens but the model has {} positions", l, options_.max_positions));
  if (skip_last_layers < 0 || skip_last_layers >= options_.layers)
    throw config_error(fmt::format("CLIP text: cannot skip {} of {} layers", skip_last_layers, options_.layers));
  auto positions = torch::arange(l, ids.options().dtype(torch::kLong));
  auto x = token_embedding_(ids) + position_embedding_(positions).unsqueeze(0);

  // Causal: a query sees itself and what came before; with a padding mask also never a masked key.
  const float lowest = std::numeric_limits<float>::lowest();
  auto allowed = torch::ones({l, l}, ids.options().dtype(torch::kBool)).tril().view({1, 1, l, l}).expand({b, 1, l, l});
  if (attention_mask.defined()) allowed = allowed & attention_mask.to(torch::kBool).view({b, 1, 1, l});
  auto additive = torch::zeros({b, 1, l, l}, x.options()).masked_fill(allowed.logical_not(), lowest);

  const int64_t run = options_.layers - skip_last_layers;
  for (int64_t i = 0; i < run; ++i) x = static_cast<ClipLayer&>(*layers_[i]).forward(x, additive);
  auto hidden = final_layer_norm_(x);

  // transformers: the first position holding eos_token_id (argmax of a boolean), per text.
  auto eos_at = (ids == options_.eos_token_id).to(torch::kInt).argmax(-1);
  auto pooled = hidden.index({torch::arange(b, eos_at.options().dtype(torch::kLong)), eos_at});
  ClipTextOutput out{hidden, pooled, {}};
  if (text_projection_) out.projected = text_projection_(pooled);
  return out;
}

}  // namespace asg::nn
