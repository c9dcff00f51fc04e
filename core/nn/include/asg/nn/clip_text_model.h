// transformers' CLIP text tower (`CLIPTextModel`, `CLIPTextModelWithProjection`; models/clip/modeling_clip.py):
// token + learned position embeddings, pre-LayerNorm transformer layers under a causal mask, a final
// LayerNorm, the pooled output at each text's first end-of-text token, and an optional bias-free projection.
// Stable Diffusion's, ModelScope's and I2VGen-XL's text encoders are this module with OpenAI's or
// OpenCLIP's weights. Parameters carry transformers' names (text_model.encoder.layers.0.self_attn.q_proj...,
// text_projection), so a transformers checkpoint loads without renaming.
//
// Checked against transformers at random weights, two configurations (tests/nn/text_models_test.cpp).
#pragma once

#include <torch/torch.h>

namespace asg::nn {

enum class TextActivation { QuickGelu, Gelu, GeluTanh, Relu };
// transformers' ACT2FN names: "quick_gelu", "gelu" (erf), "gelu_new"/"gelu_pytorch_tanh" (tanh), "relu".
// asg::Error(Config) naming the valid ones for anything else.
TextActivation text_activation_from_name(const std::string& name);
torch::Tensor apply_text_activation(TextActivation activation, const torch::Tensor& x);

struct ClipTextOptions {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t layers = 12;
  int64_t heads = 8;
  int64_t max_positions = 77;
  double layer_norm_eps = 1e-5;
  TextActivation activation = TextActivation::QuickGelu;
  int64_t eos_token_id = 49407;
  int64_t projection_dim = 0;  // 0: no text_projection (CLIPTextModel)
};

struct ClipTextOutput {
  torch::Tensor hidden;     // [B, L, hidden]: the final LayerNorm of the chosen layer's output
  torch::Tensor pooled;     // [B, hidden]: `hidden` at each text's first eos token
  torch::Tensor projected;  // [B, projection_dim] when there is a projection, else undefined
};

class ClipTextModelImpl : public torch::nn::Module {
 public:
  explicit ClipTextModelImpl(const ClipTextOptions& options);

  // ids [B, L] (int64, L <= max_positions). attention_mask [B, L] (true/1 = token), optional: transformers
  // masks the keys it marks out besides the causal mask; Stable Diffusion's pipelines pass none.
  // skip_last_layers: diffusers' clip_skip, the output of layer (layers - skip) goes through the final LayerNorm.
  ClipTextOutput forward(const torch::Tensor& ids, const torch::Tensor& attention_mask = {}, int64_t skip_last_layers = 0);

  const ClipTextOptions& options() const { return options_; }

 private:
  ClipTextOptions options_;
  std::shared_ptr<torch::nn::Module> text_model_;
  torch::nn::Embedding token_embedding_{nullptr}, position_embedding_{nullptr};
  std::vector<std::shared_ptr<torch::nn::Module>> layers_;
  torch::nn::LayerNorm final_layer_norm_{nullptr};
  torch::nn::Linear text_projection_{nullptr};
};
TORCH_MODULE(ClipTextModel);

}  // namespace asg::nn
