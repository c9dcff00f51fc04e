// transformers' T5 encoder (`T5EncoderModel`; models/t5/modeling_t5.py): a shared token embedding, blocks of
// RMS-normed (T5LayerNorm: no mean, no bias) self-attention without score scaling and a feed-forward
// (ReLU wi->wo, or gated wi_0/wi_1 for T5 v1.1 and its descendants), bucketed relative position biases
// computed by the first block and shared by all, and a final RMS norm. Parameters carry transformers' names
// (shared.weight, encoder.block.0.layer.0.SelfAttention.q.weight, ...); the checkpoint's tied copy
// encoder.embed_tokens.weight is the same tensor as shared.weight and is not a parameter here.
//
// Checked against transformers at random weights, two configurations (tests/nn/text_models_test.cpp).
#pragma once

#include <torch/torch.h>

#include "asg/nn/clip_text_model.h"  // TextActivation

namespace asg::nn {

struct T5EncoderOptions {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 2048;
  int64_t layers = 6;
  int64_t heads = 8;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  bool gated = false;                               // feed_forward_proj "gated-<act>" (wi_0, wi_1)
  TextActivation activation = TextActivation::Relu;  // "relu" / "gated-gelu" (gelu_new)
};

class T5EncoderImpl : public torch::nn::Module {
 public:
  explicit T5EncoderImpl(const T5EncoderOptions& options);

  // ids [B, L] (int64); attention_mask [B, L] (true/1 = token, optional): masked keys are never attended,
  // as transformers does when the tokenizer's mask is passed. Returns the last hidden state [B, L, d_model].
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& attention_mask = {});

  const T5EncoderOptions& options() const { return options_; }

 private:
  torch::Tensor position_bias(int64_t length, const torch::TensorOptions& float_options) const;

  T5EncoderOptions options_;
  torch::nn::Embedding shared_{nullptr};
  std::vector<std::shared_ptr<torch::nn::Module>> blocks_;
  torch::nn::Embedding relative_attention_bias_{nullptr};
  torch::Tensor final_norm_weight_;
};
TORCH_MODULE(T5Encoder);

// T5's bidirectional bucket of each relative position (key - query): half the buckets per direction, exact
// up to half of those, then logarithmic up to max_distance (one bucket beyond). int64, same shape.
torch::Tensor t5_relative_position_bucket(const torch::Tensor& relative_position, int64_t num_buckets, int64_t max_distance);

}  // namespace asg::nn
