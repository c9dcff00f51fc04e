// ddpm: ancestral sampling of Denoising Diffusion Probabilistic Models (Ho et al. 2020), Eq. 6-7: each
// step draws x_{t'} from the forward process's posterior q(x_{t'} | x_t, x0) around the predicted x0.
// With fewer steps than T the same posterior over the visited timesteps (Nichol & Dhariwal 2021,
// "respacing"): beta' = 1 - abar_t / abar_t'. The variance is the posterior's (small: (1 - abar_t') /
// (1 - abar_t) beta') or beta' itself (large), DDPM's two fixed choices.
#include <torch/torch.h>

#include <cmath>

#include "asg/plugin.h"
#include "asg/sampling.h"

namespace asg::samplers {
namespace {

class Ddpm final : public CommonSampler {
 public:
  explicit Ddpm(const Params& p) : CommonSampler(p), large_variance_(p.str("variance") == "large") {}

  torch::Tensor sample(Denoiser& model, const torch::Tensor& x_T, at::Generator generator,
                       const std::function<void(int64_t, int64_t)>& on_step) override {
    const SamplingPlan plan(model.schedule(), common_);
    const int64_t n = plan.steps();
    auto x = x_T;
    torch::Tensor x0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t t = plan.timestep(k);
      x0 = predict_x0_eps(model, x, t, common_).first;
      // The last step's posterior mean, at abar' = 1, is x0 itself, without noise.
      if (k == n - 1) break;
      const double a = plan.abar(t), a_prev = plan.abar(plan.timestep(k + 1));
      const double beta = 1 - a / a_prev;
      const double mean_x0 = std::sqrt(a_prev) * beta / (1 - a), mean_xt = std::sqrt(a / a_prev) * (1 - a_prev) / (1 - a);
      const double variance = large_variance_ ? beta : (1 - a_prev) / (1 - a) * beta;
      x = mean_x0 * x0 + mean_xt * x + std::sqrt(variance) * torch::randn(x.sizes(), generator, torch::kFloat).to(x.device());
      if (on_step) on_step(k + 1, n);
    }
    if (on_step) on_step(n, n);
    return x0;
  }

 private:
  bool large_variance_;
};

}  // namespace
}  // namespace asg::samplers

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Sampler>(
    "ddpm", "1.0.0", "DDPM ancestral sampling (posterior noise at every step), respaced to any number of steps",
    asg::with_common_sampler_params(
        1000, {asg::string_param("variance", "small", "per-step noise: the posterior's (small) or beta' (large), DDPM's two choices")
                   .one_of({"small", "large"})}),
    [](const asg::Params& p) { return std::make_shared<asg::samplers::Ddpm>(p); }))
