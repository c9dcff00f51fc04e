// ddim: Denoising Diffusion Implicit Models (Song et al. 2021) with classifier-free guidance
// (Ho & Salimans 2022). eta = 0 is deterministic DDIM; eta = 1 matches DDPM's posterior variance.
// The last step goes to abar = 1 (returns x0) with set_alpha_to_one, or to abar_0 without, as diffusers'
// DDIMScheduler decides its final alpha.
#include <torch/torch.h>

#include <cmath>

#include "asg/plugin.h"
#include "asg/sampling.h"

namespace asg::samplers {
namespace {

class Ddim final : public CommonSampler {
 public:
  explicit Ddim(const Params& p) : CommonSampler(p), eta_(p.real("eta")), set_alpha_to_one_(p.boolean("set_alpha_to_one")) {}

  torch::Tensor sample(Denoiser& model, const torch::Tensor& x_T, at::Generator generator,
                       const std::function<void(int64_t, int64_t)>& on_step) override {
    const SamplingPlan plan(model.schedule(), common_);
    const int64_t n = plan.steps();
    auto x = x_T;
    torch::Tensor x0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t t = plan.timestep(k);
      const double a = plan.abar(t);
      auto [pred_x0, eps] = predict_x0_eps(model, x, t, common_);
      x0 = pred_x0;
      const bool last = k == n - 1;
      if (last && set_alpha_to_one_) break;  // abar_prev = 1: the step lands on x0 itself
      const double a_prev = last ? plan.abar(0) : plan.abar(plan.timestep(k + 1));
      const double sigma = eta_ * std::sqrt((1 - a_prev) / (1 - a)) * std::sqrt(1 - a / a_prev);
      x = std::sqrt(a_prev) * pred_x0 + std::sqrt(std::max(0.0, 1 - a_prev - sigma * sigma)) * eps;
      if (sigma > 0) x = x + sigma * torch::randn(x.sizes(), generator, torch::kFloat).to(x.device());
      if (last) x0 = x;  // the sample at abar_0, not the prediction
      else if (on_step) on_step(k + 1, n);
    }
    if (on_step) on_step(n, n);
    return x0;
  }

 private:
  double eta_;
  bool set_alpha_to_one_;
};

}  // namespace
}  // namespace asg::samplers

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Sampler>(
    "ddim", "1.2.0", "DDIM with classifier-free guidance (eta = 0: deterministic)",
    asg::with_common_sampler_params(
        25, {asg::float_param("eta", 0.0, "stochasticity: 0 = DDIM, 1 = DDPM-like").range(0, 1),
             asg::bool_param("set_alpha_to_one", true,
                             "the last step's target abar: 1, returning the predicted x0 (true), or abar_0, returning that "
                             "step's sample (false); diffusers' DDIMScheduler flag of the same name")}),
    [](const asg::Params& p) { return std::make_shared<asg::samplers::Ddim>(p); }))
