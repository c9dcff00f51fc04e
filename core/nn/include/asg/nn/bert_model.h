// transformers' BERT text tower as Chinese-CLIP uses it (`ChineseCLIPTextModel`, the RoBERTa-wwm-ext
// weights, which are BERT's architecture; also `BertModel`): word + absolute position + token-type
// embeddings through a LayerNorm, post-LayerNorm encoder layers (attention -> dense -> LayerNorm(x + .),
// GELU intermediate -> dense -> LayerNorm(x + .)) attending to the tokens the attention mask keeps, and
// optionally, as `ChineseCLIPModel`, a bias-free text_projection of the [CLS] state. Parameters carry
// transformers' names under text_model. (text_model.encoder.layer.0.attention.self.query.weight, ...).
//
// Checked against transformers at random weights, two configurations (tests/nn/text_models_test.cpp).
#pragma once

#include <torch/torch.h>

#include "asg/nn/clip_text_model.h"  // TextActivation

namespace asg::nn {

struct BertOptions {
  int64_t vocab_size = 21128;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t layers = 12;
  int64_t heads = 12;
  int64_t max_positions = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  TextActivation activation = TextActivation::Gelu;
  int64_t projection_dim = 0;  // 0: no text_projection
};

struct BertOutput {
  torch::Tensor hidden;     // [B, L, hidden]: the last layer's output
  torch::Tensor cls;        // [B, hidden]: hidden at position 0 ([CLS]), what Chinese-CLIP projects
  torch::Tensor projected;  // [B, projection_dim] when there is a projection, else undefined
};

class BertModelImpl : public torch::nn::Module {
 public:
  explicit BertModelImpl(const BertOptions& options);

  // ids [B, L] (int64, L <= max_positions), token type 0 everywhere; attention_mask [B, L] (true/1 = token).
  BertOutput forward(const torch::Tensor& ids, const torch::Tensor& attention_mask = {});

  const BertOptions& options() const { return options_; }

 private:
  BertOptions options_;
  torch::nn::Embedding word_embeddings_{nullptr}, position_embeddings_{nullptr}, token_type_embeddings_{nullptr};
  torch::nn::LayerNorm embeddings_norm_{nullptr};
  std::vector<std::shared_ptr<torch::nn::Module>> layers_;
  torch::nn::Linear text_projection_{nullptr};
};
TORCH_MODULE(BertModel);

}  // namespace asg::nn
