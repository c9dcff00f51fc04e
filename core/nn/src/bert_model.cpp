#include "asg/nn/bert_model.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "asg/error.h"

namespace asg::nn {

namespace {

torch::nn::LayerNorm layer_norm(const BertOptions& o) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size}).eps(o.layer_norm_eps));
}

struct BertLayer : torch::nn::Module {
  explicit BertLayer(const BertOptions& o) : heads(o.heads), activation(o.activation) {
    auto attention = register_module("attention", std::make_shared<torch::nn::Module>());
    auto self = attention->register_module("self", std::make_shared<torch::nn::Module>());
    query = self->register_module("query", torch::nn::Linear(o.hidden_size, o.hidden_size));
    key = self->register_module("key", torch::nn::Linear(o.hidden_size, o.hidden_size));
    value = self->register_module("value", torch::nn::Linear(o.hidden_size, o.hidden_size));
    auto attention_output = attention->register_module("output", std::make_shared<torch::nn::Module>());
    attention_dense = attention_output->register_module("dense", torch::nn::Linear(o.hidden_size, o.hidden_size));
    attention_norm = attention_output->register_module("LayerNorm", layer_norm(o));
    intermediate = register_module("intermediate", std::make_shared<torch::nn::Module>())
                       ->register_module("dense", torch::nn::Linear(o.hidden_size, o.intermediate_size));
    auto output = register_module("output", std::make_shared<torch::nn::Module>());
    output_dense = output->register_module("dense", torch::nn::Linear(o.intermediate_size, o.hidden_size));
    output_norm = output->register_module("LayerNorm", layer_norm(o));
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
    const auto b = x.size(0), l = x.size(1), d = x.size(2), dh = d / heads;
    auto split = [&](const torch::Tensor& t) { return t.view({b, l, heads, dh}).transpose(1, 2); };
    auto scores = torch::matmul(split(query(x)), split(key(x)).transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(dh)));
    if (additive_mask.defined()) scores = scores + additive_mask;
    auto attended = torch::matmul(torch::softmax(scores, -1), split(value(x))).transpose(1, 2).reshape({b, l, d});
    auto h = attention_norm(x + attention_dense(attended));
    return output_norm(h + output_dense(apply_text_activation(activation, intermediate(h))));
  }

  int64_t heads;
  TextActivation activation;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attention_dense{nullptr}, intermediate{nullptr}, output_dense{nullptr};
  torch::nn::LayerNorm attention_norm{nullptr}, output_norm{nullptr};
};

}  // namespace

BertModelImpl::BertModelImpl(const BertOptions& options) : options_(options) {
  if (options.hidden_size % options.heads != 0)
    throw config_error(fmt::format("BERT: hidden size {} is not divisible by {} heads", options.hidden_size, options.heads));
  auto text_model = register_module("text_model", std::make_shared<torch::nn::Module>());
  auto embeddings = text_model->register_module("embeddings", std::make_shared<torch::nn::Module>());
  word_embeddings_ = embeddings->register_module("word_embeddings", torch::nn::Embedding(options.vocab_size, options.hidden_size));
  position_embeddings_ = embeddings->register_module("position_embeddings", torch::nn::Embedding(options.max_positions, options.hidden_size));
  token_type_embeddings_ = embeddings->register_module("token_type_embeddings", torch::nn::Embedding(options.type_vocab_size, options.hidden_size));
  embeddings_norm_ = embeddings->register_module("LayerNorm", layer_norm(options));
  auto layers = text_model->register_module("encoder", std::make_shared<torch::nn::Module>())->register_module("layer", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < options.layers; ++i) layers_.push_back(layers->register_module(std::to_string(i), std::make_shared<BertLayer>(options)));
  if (options.projection_dim > 0)
    text_projection_ = register_module("text_projection", torch::nn::Linear(torch::nn::LinearOptions(options.hidden_size, options.projection_dim).bias(false)));
}

BertOutput BertModelImpl::forward(const torch::Tensor& ids, const torch::Tensor& attention_mask) {
  const auto b = ids.size(0), l = ids.size(1);
  if (l > options_.max_positions) throw config_error(fmt::format("BERT: {} tokens but the model has {} positions", l, options_.max_positions));
  auto positions = torch::arange(l, ids.options().dtype(torch::kLong));
  auto x = word_embeddings_(ids) + token_type_embeddings_(torch::zeros_like(ids)) + position_embeddings_(positions).unsqueeze(0);
  x = embeddings_norm_(x);
  torch::Tensor additive;
  if (attention_mask.defined())
    additive = torch::zeros({b, 1, 1, l}, x.options()).masked_fill(attention_mask.to(torch::kBool).logical_not().view({b, 1, 1, l}),
                                                                   std::numeric_limits<float>::lowest());
  for (auto& layer : layers_) x = static_cast<BertLayer&>(*layer).forward(x, additive);
  BertOutput out{x, x.select(1, 0), {}};
  if (text_projection_) out.projected = text_projection_(out.cls);
  return out;
}

}  // namespace asg::nn
