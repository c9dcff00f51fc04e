// euler: Euler's method on the probability-flow ODE in the variance-exploding form of Karras et al.
// 2022 ("Elucidating the Design Space of Diffusion-Based Generative Models", Algorithm 1 without churn;
// k-diffusion's sample_euler, diffusers' EulerDiscreteScheduler). With sigma = sqrt((1 - abar) / abar),
// the VE variable is x = x_t / sqrt(abar), so it starts at x_T * sqrt(sigma_max^2 + 1), the model sees
// x / sqrt(sigma^2 + 1) at the step's timestep, and each step moves along d = (x - x0) / sigma:
//   x' = x + (sigma' - sigma) d, with sigma' = 0 after the last step (which then returns x0).
#include <torch/torch.h>

#include <cmath>

#include "asg/plugin.h"
#include "asg/sampling.h"

namespace asg::samplers {
namespace {

class Euler final : public CommonSampler {
 public:
  explicit Euler(const Params& p) : CommonSampler(p) {}

  torch::Tensor sample(Denoiser& model, const torch::Tensor& x_T, at::Generator /*deterministic*/,
                       const std::function<void(int64_t, int64_t)>& on_step) override {
    const SamplingPlan plan(model.schedule(), common_);
    const int64_t n = plan.steps();
    auto sigma = [&](int64_t t) { return std::sqrt((1 - plan.abar(t)) / plan.abar(t)); };
    auto x = x_T * std::sqrt(sigma(plan.timestep(0)) * sigma(plan.timestep(0)) + 1);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t t = plan.timestep(k);
      const double s = sigma(t), s_next = k + 1 < n ? sigma(plan.timestep(k + 1)) : 0.0;
      auto x0 = predict_x0_eps(model, x / std::sqrt(s * s + 1), t, common_).first;
      x = x + (s_next - s) * ((x - x0) / s);
      if (on_step) on_step(k + 1, n);
    }
    return x;
  }
};

}  // namespace
}  // namespace asg::samplers

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Sampler>(
    "euler", "1.0.0", "Euler's method on the probability-flow ODE in sigma space (Karras et al. 2022; deterministic)",
    asg::with_common_sampler_params(50, {}),
    [](const asg::Params& p) { return std::make_shared<asg::samplers::Euler>(p); }))
