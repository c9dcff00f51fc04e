#include "asg/nn/t5_encoder.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "asg/error.h"

namespace asg::nn {

namespace {

// T5LayerNorm: scale only, by the root mean square, computed in float32 as transformers does.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto variance = x.to(torch::kFloat32).pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x * torch::rsqrt(variance + eps)).to(weight.scalar_type());
}

struct T5Block : torch::nn::Module {
  T5Block(const T5EncoderOptions& o, bool has_relative_bias, torch::nn::Embedding* relative_bias_out) : options(o) {
    auto layer = register_module("layer", std::make_shared<torch::nn::Module>());
    auto attention_layer = layer->register_module("0", std::make_shared<torch::nn::Module>());
    auto attention = attention_layer->register_module("SelfAttention", std::make_shared<torch::nn::Module>());
    const int64_t inner = o.heads * o.d_kv;
    auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
    q = attention->register_module("q", linear(o.d_model, inner));
    k = attention->register_module("k", linear(o.d_model, inner));
    v = attention->register_module("v", linear(o.d_model, inner));
    this->o = attention->register_module("o", linear(inner, o.d_model));
    if (has_relative_bias)
      *relative_bias_out = attention->register_module("relative_attention_bias", torch::nn::Embedding(o.relative_attention_num_buckets, o.heads));
    attention_norm = attention_layer->register_module("layer_norm", std::make_shared<torch::nn::Module>())
                         ->register_parameter("weight", torch::ones({o.d_model}));
    auto ff_layer = layer->register_module("1", std::make_shared<torch::nn::Module>());
    auto ff = ff_layer->register_module("DenseReluDense", std::make_shared<torch::nn::Module>());
    if (o.gated) {
      wi_0 = ff->register_module("wi_0", linear(o.d_model, o.d_ff));
      wi_1 = ff->register_module("wi_1", linear(o.d_model, o.d_ff));
    } else {
      wi = ff->register_module("wi", linear(o.d_model, o.d_ff));
    }
    wo = ff->register_module("wo", linear(o.d_ff, o.d_model));
    ff_norm = ff_layer->register_module("layer_norm", std::make_shared<torch::nn::Module>())->register_parameter("weight", torch::ones({o.d_model}));
  }

  // bias [B or 1, heads, L, L]: relative positions plus the padding mask, added to the unscaled scores.
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& bias) {
    const auto b = x.size(0), l = x.size(1);
    auto h = rms_norm(x, attention_norm, options.layer_norm_epsilon);
    auto split = [&](const torch::Tensor& t) { return t.view({b, l, options.heads, options.d_kv}).transpose(1, 2); };
    auto scores = torch::matmul(split(q(h)), split(k(h)).transpose(-1, -2)) + bias;
    auto weights = torch::softmax(scores.to(torch::kFloat32), -1).to(scores.scalar_type());
    auto attended = torch::matmul(weights, split(v(h))).transpose(1, 2).reshape({b, l, options.heads * options.d_kv});
    x = x + o(attended);
    h = rms_norm(x, ff_norm, options.layer_norm_epsilon);
    auto hidden = options.gated ? apply_text_activation(options.activation, wi_0(h)) * wi_1(h) : apply_text_activation(options.activation, wi(h));
    return x + wo(hidden);
  }

  T5EncoderOptions options;
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr}, wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
  torch::Tensor attention_norm, ff_norm;
};

}  // namespace

torch::Tensor t5_relative_position_bucket(const torch::Tensor& relative_position, int64_t num_buckets, int64_t max_distance) {
  const int64_t half = num_buckets / 2;
  auto bucket = (relative_position > 0).to(torch::kLong) * half;
  auto distance = relative_position.abs();
  const int64_t max_exact = half / 2;
  auto is_small = distance < max_exact;
  // The same float32 operations, in the same order, as transformers, so each position lands in its bucket.
  auto large = max_exact + (torch::log(distance.to(torch::kFloat32) / static_cast<float>(max_exact)) /
                            std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                            static_cast<double>(half - max_exact))
                               .to(torch::kLong);
  large = torch::minimum(large, torch::full_like(large, half - 1));
  return bucket + torch::where(is_small, distance, large);
}

T5EncoderImpl::T5EncoderImpl(const T5EncoderOptions& options) : options_(options) {
  if (options.layers < 1) throw config_error("T5 encoder: at least one block");
  shared_ = register_module("shared", torch::nn::Embedding(options.vocab_size, options.d_model));
  auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  auto blocks = encoder->register_module("block", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < options.layers; ++i)
    blocks_.push_back(blocks->register_module(std::to_string(i), std::make_shared<T5Block>(options, i == 0, &relative_attention_bias_)));
  final_norm_weight_ = encoder->register_module("final_layer_norm", std::make_shared<torch::nn::Module>())->register_parameter("weight", torch::ones({options.d_model}));
}

torch::Tensor T5EncoderImpl::position_bias(int64_t length, const torch::TensorOptions& float_options) const {
  auto positions = torch::arange(length, float_options.dtype(torch::kLong));
  auto relative = positions.view({1, length}) - positions.view({length, 1});  // key - query
  auto buckets = t5_relative_position_bucket(relative, options_.relative_attention_num_buckets, options_.relative_attention_max_distance);
  return torch::embedding(relative_attention_bias_->weight, buckets).permute({2, 0, 1}).unsqueeze(0).to(float_options.dtype());  // [1, heads, L, L]
}

torch::Tensor T5EncoderImpl::forward(const torch::Tensor& ids, const torch::Tensor& attention_mask) {
  const auto b = ids.size(0), l = ids.size(1);
  auto x = shared_(ids);
  auto bias = position_bias(l, x.options());
  if (attention_mask.defined()) {
    auto masked = attention_mask.to(torch::kBool).logical_not().view({b, 1, 1, l});
    bias = bias + torch::zeros({b, 1, 1, l}, x.options()).masked_fill(masked, std::numeric_limits<float>::lowest());
  }
  for (auto& block : blocks_) x = static_cast<T5Block&>(*block).forward(x, bias);
  return rms_norm(x, final_norm_weight_, options_.layer_norm_epsilon);
}

}  // namespace asg::nn
