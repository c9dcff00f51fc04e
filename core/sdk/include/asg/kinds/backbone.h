// Backbone plugins: the denoising network of a video diffusion model.
//
// Contract
// - forward(x, t, text) takes the noisy clip x [B, C + Cc, T, H, W] (C = BackboneContext::channels,
//   Cc = BackboneContext::condition_channels, values roughly in [-1, 1]), the diffusion timestep t as
//   float [B] in [0, num_timesteps), and the text encoding, and returns [B, C, T, H, W]: the prediction in
//   the parameterisation the experiment's [diffusion].prediction names (the core does the conversion; the
//   backbone need not know).
// - In latent space (an [autoencoder]), C, T, H, W are the latent's; in pixel space C = 4 (RGBA).
// - With image conditioning ([conditioning] tasks), the Cc = C + 1 channels after the noisy clip are the
//   condition frames (clean, zero where not given) and a 0/1 mask of which frames are given, as in
//   I2VGen-XL / VideoCrafter's concatenated conditioning. Cc = 0 without it.
// - Temporal mixing goes through BackboneContext::make_temporal, called once per insertion point while
//   the backbone is constructed, and the result registered as a submodule. This is what lets an
//   experiment swap STI / temporal conv / none without touching the backbone.
// - Optional: a backbone conditioned on an image embedding as well (I2VGen-XL's CLIP image embedding) says
//   its width in image_embedding_dim() and takes it [B, width] in forward_with_image_embedding(); the
//   unconditional input is zeros, as in diffusers' I2VGenXLPipeline. The experiment's [image_encoder]
//   (asg/kinds/image_encoder.h) computes it from the given frame; the core refuses such a backbone without
//   one, and an [image_encoder] whose dim() differs.
// - A backbone is a torch::nn::Module: every parameter is registered, so the core can move it to a
//   device, optimise, EMA and checkpoint it.
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <functional>
#include <memory>

#include "asg/kinds/temporal.h"
#include "asg/kinds/text_encoder.h"

namespace asg {

struct BackboneContext {
  int64_t channels = 4;  // RGBA in pixel space; the latent channels with an autoencoder
  int64_t condition_channels = 0;  // extra input channels after the noisy clip (image conditioning)
  int64_t frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  int64_t text_dim = 0;  // TextEncoder::dim()
  int64_t num_timesteps = 1000;
  // Builds the experiment's temporal module for one insertion point.
  std::function<std::shared_ptr<TemporalModule>(const TemporalContext&)> make_temporal;
};

class Backbone : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const TextEmbedding& text) = 0;  // required
  virtual int64_t image_embedding_dim() const { return 0; }  // optional, with forward_with_image_embedding
  virtual torch::Tensor forward_with_image_embedding(const torch::Tensor& x, const torch::Tensor& t, const TextEmbedding& text,
                                                     const torch::Tensor& image_embedding) {
    (void)image_embedding;
    return forward(x, t, text);
  }
};

template <>
struct PluginKindTraits<Backbone> {
  static constexpr const char* name = "backbone";
  using Context = BackboneContext;
};

}  // namespace asg
