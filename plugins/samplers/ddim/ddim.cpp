// ddim: Denoising Diffusion Implicit Models (Song et al. 2021) with classifier-free guidance
// (Ho & Salimans 2022). eta = 0 is deterministic DDIM; eta = 1 matches DDPM's posterior variance.
// Timesteps are spaced evenly over [0, T-1] ("linspace" spacing), so the first step starts at T-1.
#include <torch/torch.h>

#include <cmath>

#include "asg/kinds/sampler.h"
#include "asg/plugin.h"

namespace asg::samplers {
namespace {

class Ddim final : public Sampler {
 public:
  explicit Ddim(const Params& p)
      : steps_(p.integer("steps")), eta_(p.real("eta")), guidance_(p.real("guidance_scale")), clip_(p.boolean("clip_x0")) {}

  int64_t num_steps() const override { return steps_; }

  torch::Tensor sample(Denoiser& model, const torch::Tensor& x_T, at::Generator generator,
                       const std::function<void(int64_t, int64_t)>& on_step) override {
    const NoiseSchedule& schedule = model.schedule();
    const int64_t T = schedule.num_timesteps();
    const int64_t n = std::min(steps_, T);
    std::vector<int64_t> ts(n);
    for (int64_t i = 0; i < n; ++i) ts[i] = n == 1 ? T - 1 : std::llround(static_cast<double>(i) * (T - 1) / (n - 1));
    auto abar = schedule.alphas_cumprod();  // float64, CPU
    auto x = x_T;
    torch::Tensor x0;
    for (int64_t i = n - 1; i >= 0; --i) {
      const int64_t t = ts[i];
      const double a = abar[t].item<double>();
      const double a_prev = i > 0 ? abar[ts[i - 1]].item<double>() : 1.0;
      auto out = model.predict(x, t, guidance_);
      auto tt = torch::full({x.size(0)}, t, torch::kLong);
      auto [pred_x0, eps] = schedule.to_x0_eps(out, x, tt);
      if (clip_) {
        // Keep x0 in the data range and make eps consistent with it.
        pred_x0 = pred_x0.clamp(-1, 1);
        eps = (x - std::sqrt(a) * pred_x0) / std::sqrt(1 - a);
      }
      x0 = pred_x0;
      if (i == 0) break;
      const double sigma = eta_ * std::sqrt((1 - a_prev) / (1 - a)) * std::sqrt(1 - a / a_prev);
      x = std::sqrt(a_prev) * pred_x0 + std::sqrt(std::max(0.0, 1 - a_prev - sigma * sigma)) * eps;
      if (sigma > 0) x = x + sigma * torch::randn(x.sizes(), generator, torch::kFloat).to(x.device());
      if (on_step) on_step(n - i, n);
    }
    if (on_step) on_step(n, n);
    return x0;
  }

 private:
  int64_t steps_;
  double eta_, guidance_;
  bool clip_;
};

}  // namespace
}  // namespace asg::samplers

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Sampler>(
    "ddim", "1.0.0", "DDIM with classifier-free guidance (eta = 0: deterministic)",
    std::vector<asg::ParamSpec>{
        asg::int_param("steps", 25, "denoising steps").range(1, 10000),
        asg::float_param("eta", 0.0, "stochasticity: 0 = DDIM, 1 = DDPM-like").range(0, 1),
        asg::float_param("guidance_scale", 3.0, "classifier-free guidance scale; 1 = no guidance").range(0, 100),
        asg::bool_param("clip_x0", true, "clamp predicted x0 to [-1, 1] at every step"),
    },
    [](const asg::Params& p) { return std::make_shared<asg::samplers::Ddim>(p); }))
