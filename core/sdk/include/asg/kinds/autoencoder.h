// Autoencoder plugins: the map between pixel clips and the latent space a latent diffusion model trains
// and samples in (Rombach et al. 2022; VideoLDM and ModelScope use Stable Diffusion's image VAE per
// frame). An experiment without an [autoencoder] table works in pixel space, as before this kind existed.
//
// Contract
// - The factory gets the pixel clip's shape (AutoencoderContext) and refuses, with asg::Error(Config)
//   naming its keys, a shape it cannot code (a height not divisible by its downscale factor, say).
// - latent() describes the latent clip: channels, frames, height, width, and the scaling factor the
//   core multiplies every latent by before diffusion (Stable Diffusion's 0.18215), so that latents have
//   roughly unit variance. scaling_factor = 0 asks the core to measure it: 1 / std of the latents of the
//   first training batches, stored with the autoencoder's weights.
// - encode(x) maps model-space clips x [B, C, T, H, W] (premultiplied RGBA in [-1, 1]) to unscaled latents
//   [B, Cz, Tz, Hz, Wz] deterministically (a VAE returns its posterior mean); decode(z) maps latents back
//   to clips of x's shape. Both run on the device of the module's parameters and are called under
//   torch::NoGradGuard by the core.
// - A trainable autoencoder (training().steps > 0) is trained by `asg run` before the diffusion model,
//   on the experiment's training data, by minimising training_loss(x) (a scalar) with AdamW at
//   training().lr; the core then freezes it, writes its weights to the run folder (autoencoder.pt) and
//   reuses that file when the run is resumed. A frozen autoencoder (a TorchScript file, or trained weights
//   given as a parameter) reports steps = 0 and is never trained.
// - An autoencoder is a torch::nn::Module: every parameter and buffer is registered, so the core can move
//   it to the run's device and save and load it by name.
// - The file a run writes after training it (<run>/autoencoder.pt) is a torch::serialize archive holding
//   the module's parameters and buffers under their dotted names (asg::nn::save_module_state, in
//   asg/nn/module_state.h) plus kLatentScalingFactorKey, a scalar double tensor; a plugin that takes
//   trained weights as a parameter reads that format (asg::nn::load_module_state checks every shape).
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

namespace asg {

inline constexpr const char* kLatentScalingFactorKey = "asg.latent_scaling_factor";

struct AutoencoderContext {
  int64_t channels = 4;  // RGBA, premultiplied, in [-1, 1]
  int64_t frames = 0;
  int64_t height = 0;
  int64_t width = 0;
};

struct LatentShape {
  int64_t channels = 0;
  int64_t frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  double scaling_factor = 1;  // 0 = measured by the core after training
};

struct AutoencoderTraining {
  int64_t steps = 0;  // 0 = frozen
  double lr = 1e-3;
};

class Autoencoder : public torch::nn::Module {
 public:
  virtual LatentShape latent() const = 0;                         // required
  virtual torch::Tensor encode(const torch::Tensor& x) = 0;       // required
  virtual torch::Tensor decode(const torch::Tensor& z) = 0;       // required
  virtual AutoencoderTraining training() const { return {}; }     // optional: frozen unless overridden
  virtual torch::Tensor training_loss(const torch::Tensor& x) {  // required when training().steps > 0
    (void)x;
    throw std::logic_error("this autoencoder is not trainable");
  }
};

template <>
struct PluginKindTraits<Autoencoder> {
  static constexpr const char* name = "autoencoder";
  using Context = AutoencoderContext;
};

}  // namespace asg
