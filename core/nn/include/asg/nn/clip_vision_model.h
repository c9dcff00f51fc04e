// transformers' CLIP image tower (`CLIPVisionModel`, `CLIPVisionModelWithProjection`; models/clip/modeling_clip.py):
// a bias-free patch convolution, a learned class token and position embeddings, a LayerNorm before the
// pre-LayerNorm transformer layers (the text tower's layer, without a mask), the class token's final state
// through post_layernorm as the pooled output, and an optional bias-free visual_projection. I2VGen-XL's
// image encoder is this module with OpenCLIP ViT-H/14's weights (the defaults below). Parameters carry
// transformers' names (vision_model.embeddings.patch_embedding.weight, ..., visual_projection.weight).
//
// Checked against transformers at random weights, two configurations (tests/nn/clip_vision_model_test.cpp).
#pragma once

#include <torch/torch.h>

#include "asg/nn/clip_text_model.h"

namespace asg::nn {

struct ClipVisionOptions {
  int64_t image_size = 224;
  int64_t patch_size = 14;
  int64_t channels = 3;
  int64_t hidden_size = 1280;
  int64_t intermediate_size = 5120;
  int64_t layers = 32;
  int64_t heads = 16;
  double layer_norm_eps = 1e-5;
  TextActivation activation = TextActivation::Gelu;
  int64_t projection_dim = 1024;  // 0: no visual_projection (CLIPVisionModel)
};

struct ClipVisionOutput {
  torch::Tensor hidden;     // [B, 1 + patches, hidden]: the last layer's states (transformers' last_hidden_state)
  torch::Tensor pooled;     // [B, hidden]: post_layernorm of the class token's state (pooler_output)
  torch::Tensor projected;  // [B, projection_dim] (image_embeds) when there is a projection, else undefined
};

class ClipVisionModelImpl : public torch::nn::Module {
 public:
  // asg::Error(Config) for an image size the patches do not tile or a width the heads do not divide.
  explicit ClipVisionModelImpl(const ClipVisionOptions& options);

  // pixels [B, channels, image_size, image_size], already normalised (CLIPImageProcessor's output).
  ClipVisionOutput forward(const torch::Tensor& pixels);

  const ClipVisionOptions& options() const { return options_; }

 private:
  ClipVisionOptions options_;
  torch::nn::Conv2d patch_embedding_{nullptr};
  torch::Tensor class_embedding_;
  torch::nn::Embedding position_embedding_{nullptr};
  torch::nn::LayerNorm pre_layrnorm_{nullptr}, post_layernorm_{nullptr};
  std::vector<std::shared_ptr<torch::nn::Module>> layers_;
  torch::nn::Linear visual_projection_{nullptr};
};
TORCH_MODULE(ClipVisionModel);

}  // namespace asg::nn
