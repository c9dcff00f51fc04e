// clip_vision: CLIP's image tower in C++ (asg/nn/clip_vision_model.h, exact to transformers'
// CLIPVisionModelWithProjection) behind I2VGen-XL's preprocessing (i2vgenxl_image_preprocess.h); its weights
// come from [image_encoder] init_from (a transformers checkpoint, or one `asg weights import` wrote). The
// defaults are I2VGen-XL's image encoder: OpenCLIP ViT-H/14, 32 layers of 1280, projected to 1024.
//
// The embedding is CLIPVisionModelWithProjection's image_embeds (visual_projection of the pooled class
// token), what I2VGenXLPipeline._encode_image gives the UNet; with projection_dim = 0, the pooled output.
#include <torch/torch.h>

#include <fmt/format.h>

#include "asg/error.h"
#include "asg/kinds/image_encoder.h"
#include "asg/nn/clip_vision_model.h"
#include "asg/nn/module_state.h"
#include "asg/plugin.h"
#include "i2vgenxl_image_preprocess.h"

namespace asg::image_encoders {
namespace {

nn::ClipVisionOptions model_options(const Params& p) {
  nn::ClipVisionOptions o;
  o.image_size = p.integer("image_size");
  o.patch_size = p.integer("patch_size");
  o.hidden_size = p.integer("hidden_size");
  o.intermediate_size = p.integer("intermediate_size");
  o.layers = p.integer("layers");
  o.heads = p.integer("heads");
  o.layer_norm_eps = p.real("layer_norm_eps");
  o.activation = nn::text_activation_from_name(p.str("activation"));
  o.projection_dim = p.integer("projection_dim");
  if (o.image_size % o.patch_size != 0)
    throw config_error(fmt::format("image_size = {} is not a whole number of patch_size = {} patches (valid: a multiple of {})",
                                   o.image_size, o.patch_size, o.patch_size));
  if (o.hidden_size % o.heads != 0)
    throw config_error(fmt::format("hidden_size = {} is not divisible by heads = {}", o.hidden_size, o.heads));
  return o;
}

std::array<double, 3> background_of(const Params& p) {
  const auto v = p.reals("background");
  if (v.size() != 3) throw config_error(fmt::format("background has {} values (valid: [r, g, b] in [0, 1])", v.size()));
  for (double c : v)
    if (c < 0 || c > 1) throw config_error(fmt::format("background value {} is outside [0, 1]", c));
  return {v[0], v[1], v[2]};
}

class ClipVision final : public ImageEncoder {
 public:
  explicit ClipVision(const Params& p) : background_(background_of(p)), model_(model_options(p)) {
    nn::adopt_children(*this, *model_);  // transformers' parameter names (vision_model.*, visual_projection.*)
    nn::freeze(*this);
  }

  int64_t dim() const override {
    const auto& o = model_->options();
    return o.projection_dim > 0 ? o.projection_dim : o.hidden_size;
  }

  torch::Tensor encode(const torch::Tensor& frames) override {
    if (frames.dim() != 4 || frames.size(1) != 4)
      throw internal_error(fmt::format("clip_vision: frames of shape {} (the contract: [B, 4, H, W])", c10::str(frames.sizes())));
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> pixels;
    for (int64_t b = 0; b < frames.size(0); ++b) pixels.push_back(i2vgenxl_image_pixels(frames[b], background_, model_->options().image_size));
    const auto device = model_->parameters().front().device();
    auto out = model_->forward(torch::stack(pixels).to(device));
    return out.projected.defined() ? out.projected : out.pooled;
  }

 private:
  std::array<double, 3> background_;
  nn::ClipVisionModel model_;
};

}  // namespace
}  // namespace asg::image_encoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::ImageEncoder>(
    "clip_vision", "1.0.0",
    "CLIP's image tower exact to transformers' CLIPVisionModelWithProjection behind I2VGen-XL's preprocessing, weights from init_from "
    "(default: I2VGen-XL's OpenCLIP ViT-H/14)",
    std::vector<asg::ParamSpec>{
        asg::int_param("image_size", 224, "input side in pixels (I2VGen-XL's feature extractor: 224)").range(1, 4096),
        asg::int_param("patch_size", 14, "patch side in pixels (ViT-H/14: 14)").range(1, 1024),
        asg::int_param("hidden_size", 1280, "width (ViT-H: 1280, ViT-L: 1024)").range(1, 65536),
        asg::int_param("intermediate_size", 5120, "MLP width").range(1, 262144),
        asg::int_param("layers", 32, "transformer layers").range(1, 256),
        asg::int_param("heads", 16, "attention heads").range(1, 1024),
        asg::float_param("layer_norm_eps", 1e-5, "LayerNorm epsilon").range(0, 1),
        asg::string_param("activation", "gelu", "MLP activation: gelu (OpenCLIP) or quick_gelu (OpenAI)").one_of({"gelu", "quick_gelu", "gelu_new", "relu"}),
        asg::int_param("projection_dim", 1024, "visual_projection's width, the embedding's (I2VGen-XL: 1024); 0 = no projection, the pooled output")
            .range(0, 65536),
        asg::float_list_param("background", {0.0, 0.0, 0.0}, "RGB in [0, 1] that transparent pixels show in the picture encoded (black: what "
                                                              "a 3-channel VAE sees of the same premultiplied frame)"),
    },
    [](const asg::Params& p) { return std::make_shared<asg::image_encoders::ClipVision>(p); }))
