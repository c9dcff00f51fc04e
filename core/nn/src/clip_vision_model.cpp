#include "asg/nn/clip_vision_model.h"

#include <fmt/format.h>

#include "asg/error.h"
#include "clip_layer.h"

namespace asg::nn {

ClipVisionModelImpl::ClipVisionModelImpl(const ClipVisionOptions& o) : options_(o) {
  if (o.patch_size < 1 || o.image_size % o.patch_size != 0)
    throw config_error(fmt::format("CLIP vision: image size {} is not a whole number of {}-pixel patches", o.image_size, o.patch_size));
  if (o.hidden_size % o.heads != 0)
    throw config_error(fmt::format("CLIP vision: hidden size {} is not divisible by {} heads", o.hidden_size, o.heads));
  const int64_t patches = (o.image_size / o.patch_size) * (o.image_size / o.patch_size);
  auto vision = register_module("vision_model", std::make_shared<torch::nn::Module>());
  auto embeddings = vision->register_module("embeddings", std::make_shared<torch::nn::Module>());
  class_embedding_ = embeddings->register_parameter("class_embedding", torch::randn({o.hidden_size}));
  patch_embedding_ = embeddings->register_module(
      "patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.channels, o.hidden_size, o.patch_size).stride(o.patch_size).bias(false)));
  position_embedding_ = embeddings->register_module("position_embedding", torch::nn::Embedding(patches + 1, o.hidden_size));
  // transformers' spelling: "pre_layrnorm".
  pre_layrnorm_ = vision->register_module("pre_layrnorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size}).eps(o.layer_norm_eps)));
  auto encoder = vision->register_module("encoder", std::make_shared<torch::nn::Module>());
  auto layers = encoder->register_module("layers", std::make_shared<torch::nn::Module>());
  for (int64_t i = 0; i < o.layers; ++i)
    layers_.push_back(layers->register_module(
        std::to_string(i), std::make_shared<ClipLayer>(ClipLayerOptions{o.hidden_size, o.intermediate_size, o.heads, o.layer_norm_eps, o.activation})));
  post_layernorm_ = vision->register_module("post_layernorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.hidden_size}).eps(o.layer_norm_eps)));
  if (o.projection_dim > 0)
    visual_projection_ = register_module("visual_projection", torch::nn::Linear(torch::nn::LinearOptions(o.hidden_size, o.projection_dim).bias(false)));
}

ClipVisionOutput ClipVisionModelImpl::forward(const torch::Tensor& pixels) {
  const auto& o = options_;
  if (pixels.dim() != 4 || pixels.size(1) != o.channels || pixels.size(2) != o.image_size || pixels.size(3) != o.image_size)
    throw config_error(fmt::format("CLIP vision: pixels of shape {} (valid: [B, {}, {}, {}])", c10::str(pixels.sizes()), o.channels,
                                   o.image_size, o.image_size));
  const int64_t b = pixels.size(0);
  auto patches = patch_embedding_(pixels.to(patch_embedding_->weight.scalar_type())).flatten(2).transpose(1, 2);  // [B, P, D]
  auto x = torch::cat({class_embedding_.view({1, 1, -1}).expand({b, 1, o.hidden_size}), patches}, 1) + position_embedding_->weight.unsqueeze(0);
  x = pre_layrnorm_(x);
  for (const auto& layer : layers_) x = static_cast<ClipLayer&>(*layer).forward(x);
  ClipVisionOutput out{x, post_layernorm_(x.select(1, 0)), {}};
  if (visual_projection_) out.projected = visual_projection_(out.pooled);
  return out;
}

}  // namespace asg::nn
