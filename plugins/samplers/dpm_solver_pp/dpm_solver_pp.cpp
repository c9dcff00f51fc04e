// dpm_solver_pp: DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of
// Diffusion Probabilistic Models", Algorithm 2): a second-order multistep solver of the probability-flow
// ODE in data (x0) prediction, in lambda = log(alpha / sigma) with alpha = sqrt(abar), sigma =
// sqrt(1 - abar). Each step, with h = lambda' - lambda and r = h_prev / h:
//   D  = (1 + 1 / (2r)) x0_now - 1 / (2r) x0_prev      (first step: D = x0_now)
//   x' = (sigma' / sigma) x - alpha' (exp(-h) - 1) D
// The last step goes to sigma = 0 at first order, i.e. returns the last x0 ("lower order final",
// which keeps few-step sampling stable), so n steps cost n model evaluations.
#include <torch/torch.h>

#include <cmath>

#include "asg/plugin.h"
#include "asg/sampling.h"

namespace asg::samplers {
namespace {

class DpmSolverPlusPlus final : public CommonSampler {
 public:
  explicit DpmSolverPlusPlus(const Params& p) : CommonSampler(p) {}

  torch::Tensor sample(Denoiser& model, const torch::Tensor& x_T, at::Generator /*deterministic*/,
                       const std::function<void(int64_t, int64_t)>& on_step) override {
    const SamplingPlan plan(model.schedule(), common_);
    const int64_t n = plan.steps();
    auto alpha = [&](int64_t t) { return std::sqrt(plan.abar(t)); };
    auto sigma = [&](int64_t t) { return std::sqrt(1 - plan.abar(t)); };
    auto lambda = [&](int64_t t) { return std::log(alpha(t) / sigma(t)); };
    auto x = x_T;
    torch::Tensor x0, previous_x0;
    double previous_h = 0;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t t = plan.timestep(k);
      x0 = predict_x0_eps(model, x, t, common_).first;
      if (k == n - 1) break;
      const int64_t next = plan.timestep(k + 1);
      const double h = lambda(next) - lambda(t);
      torch::Tensor d = x0;
      if (previous_x0.defined()) {
        const double r = previous_h / h;
        d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous_x0;
      }
      x = (sigma(next) / sigma(t)) * x - alpha(next) * std::expm1(-h) * d;
      previous_x0 = x0;
      previous_h = h;
      if (on_step) on_step(k + 1, n);
    }
    if (on_step) on_step(n, n);
    return x0;
  }
};

}  // namespace
}  // namespace asg::samplers

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Sampler>(
    "dpm_solver_pp", "1.0.0", "DPM-Solver++(2M): second-order multistep ODE solver in x0 prediction (deterministic)",
    asg::with_common_sampler_params(20, {}),
    [](const asg::Params& p) { return std::make_shared<asg::samplers::DpmSolverPlusPlus>(p); }))
