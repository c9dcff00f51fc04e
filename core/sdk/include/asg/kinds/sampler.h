// Sampler plugins: turn noise into a clip by repeatedly asking the trained model to denoise.
//
// Contract
// - sample() starts from x_T (standard normal noise, [B, C, T, H, W]) and returns the x_0 estimate in
//   model space (roughly [-1, 1]) with x_T's shape. It may clamp x_0 predictions to [-1, 1].
// - All model calls go through Denoiser::predict, which applies classifier-free guidance for the scale
//   the sampler passes (the sampler owns the guidance *schedule*, the core owns the batching).
// - Randomness (DDPM/ancestral noise) must come only from the generator passed in, so a run with
//   [runtime].deterministic is reproducible.
// - on_step(i, n) is called after each of n steps (progress reporting; may throw asg::Error(Interrupted)).
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <functional>

#include "asg/diffusion.h"

namespace asg {

class Denoiser {
 public:
  virtual ~Denoiser() = default;
  // Network output at integer timestep t with guidance: uncond + scale * (cond - uncond).
  // scale = 1 is the conditional output alone (one forward pass).
  virtual torch::Tensor predict(const torch::Tensor& x_t, int64_t t, double guidance_scale) = 0;
  virtual const NoiseSchedule& schedule() const = 0;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual int64_t num_steps() const = 0;  // required: number of denoiser evaluations per sample
  virtual torch::Tensor sample(Denoiser& model, const torch::Tensor& x_T, at::Generator generator,
                               const std::function<void(int64_t, int64_t)>& on_step) = 0;  // required
};

template <>
struct PluginKindTraits<Sampler> {
  static constexpr const char* name = "sampler";
  using Context = NoContext;
};

}  // namespace asg
