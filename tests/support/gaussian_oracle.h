// The analytic case for samplers: data drawn from one Gaussian, x0 ~ N(mean, std^2) independently per
// element. Then x_t = sqrt(abar) x0 + sqrt(1 - abar) eps is Gaussian too and the optimal denoiser is
// closed-form:
//   E[x0 | x_t] = mean + sqrt(abar) std^2 / (abar std^2 + 1 - abar) * (x_t - sqrt(abar) mean)
// GaussianOracle answers every model call with that, in the schedule's parameterisation (eps, v or x0),
// so a correct sampler must turn standard normal noise into samples of N(mean, std^2), up to its
// discretisation error. With guidance_scale != 1 the conditional and unconditional answers are equal,
// so guidance changes nothing. Needs torch.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>

#include "asg/kinds/sampler.h"

namespace asg::testing {

class GaussianOracle : public Denoiser {
 public:
  GaussianOracle(double mean, double std, NoiseSchedule schedule) : mean_(mean), std_(std), schedule_(std::move(schedule)) {}

  torch::Tensor predict(const torch::Tensor& x_t, int64_t t, double guidance_scale) override {
    timesteps.push_back(t);
    scales.push_back(guidance_scale);
    const double a = schedule_.alphas_cumprod()[t].item<double>();
    const double gain = std::sqrt(a) * std_ * std_ / (a * std_ * std_ + 1 - a);
    auto x0 = mean_ + gain * (x_t - std::sqrt(a) * mean_);
    auto eps = (x_t - std::sqrt(a) * x0) / std::sqrt(1 - a);
    return schedule_.target(x0, eps, torch::full({x_t.size(0)}, t, torch::kLong));
  }
  const NoiseSchedule& schedule() const override { return schedule_; }

  std::vector<int64_t> timesteps;  // every call's timestep, in order
  std::vector<double> scales;      // and guidance scale

 private:
  double mean_, std_;
  NoiseSchedule schedule_;
};

// Sample mean and standard deviation of every element of `x`, in float64.
inline std::pair<double, double> moments(const torch::Tensor& x) {
  auto d = x.to(torch::kFloat64);
  return {d.mean().item<double>(), d.std().item<double>()};
}

}  // namespace asg::testing

namespace asg::testing {

// Runs `sampler` on the Gaussian oracle over `schedule` from `count` standard normal scalars (as clips of
// shape [count, 1, 1, 1, 1]) and returns the samples' moments.
inline std::pair<double, double> gaussian_sample_moments(Sampler& sampler, const NoiseSchedule& schedule, double mean, double std,
                                                         int64_t count = 20000, uint64_t seed = 11) {
  GaussianOracle oracle(mean, std, schedule);
  auto generator = at::detail::createCPUGenerator(seed);
  auto noise = torch::randn({count, 1, 1, 1, 1}, generator, torch::kFloat);
  return moments(sampler.sample(oracle, noise, generator, nullptr));
}


// A deterministic sampler on the Gaussian oracle is an affine map of its noise: every update is linear
// in x and the oracle's x0 is affine in x_t. Probing it with x_T = 0 and x_T = 1 gives the map exactly,
// so the output distribution for x_T ~ N(0, 1) is N(offset, gain^2) with no Monte Carlo error.
struct AffineMap {
  double gain = 0, offset = 0;
};

inline AffineMap sampler_affine_map(Sampler& sampler, const NoiseSchedule& schedule, double mean, double std) {
  GaussianOracle oracle(mean, std, schedule);
  auto probes = torch::tensor({0.0f, 1.0f}).view({2, 1, 1, 1, 1});
  auto out = sampler.sample(oracle, probes, at::detail::createCPUGenerator(1), nullptr).to(torch::kFloat64).flatten();
  const double at0 = out[0].item<double>(), at1 = out[1].item<double>();
  return {at1 - at0, at0};
}

// The exact probability-flow ODE from x_T ~ N(0, 1) placed at timestep `first` down to timestep `last`,
// followed by the oracle's x0 there (what every sampler here returns), as an affine map of x_T. In the
// variance-exploding variable y = x_t / sqrt(abar), sigma^2 = (1 - abar) / abar, the ODE dy/dsigma =
// (y - E[x0|y]) / sigma has the solution y - mean proportional to sqrt(std^2 + sigma^2).
inline AffineMap ode_limit(const NoiseSchedule& schedule, double mean, double std, int64_t first, int64_t last) {
  auto sigma2 = [&](int64_t t) {
    const double a = schedule.alphas_cumprod()[t].item<double>();
    return (1 - a) / a;
  };
  const double a_first = schedule.alphas_cumprod()[first].item<double>();
  const double ratio = std::sqrt((std * std + sigma2(last)) / (std * std + sigma2(first)));
  const double shrink = std * std / (std * std + sigma2(last));  // E[x0 | y] at the last timestep
  return {shrink * ratio / std::sqrt(a_first), mean - shrink * ratio * mean};
}


// How far a deterministic sampler's affine map is from the ODE's, for each step count (linspace spacing,
// so every count starts at T - 1 and ends at 0): |gain / exact gain - 1| + |offset - exact offset|.
inline std::vector<double> ode_errors(const std::function<std::shared_ptr<Sampler>(int64_t)>& make_sampler,
                                      const NoiseSchedule& schedule, double mean, double std, const std::vector<int64_t>& steps) {
  const AffineMap exact = ode_limit(schedule, mean, std, schedule.num_timesteps() - 1, 0);
  std::vector<double> errors;
  for (int64_t n : steps) {
    const AffineMap map = sampler_affine_map(*make_sampler(n), schedule, mean, std);
    errors.push_back(std::abs(map.gain / exact.gain - 1) + std::abs(map.offset - exact.offset));
  }
  return errors;
}


// A deterministic sampler ignores its generator, and visits `expected` timesteps in that order.
inline void expect_deterministic_visiting(Sampler& sampler, const NoiseSchedule& schedule, const std::vector<int64_t>& expected) {
  GaussianOracle oracle(0.3, 0.4, schedule);
  auto noise = torch::randn({1, 2, 2, 3, 3});
  auto a = sampler.sample(oracle, noise, at::detail::createCPUGenerator(1), nullptr);
  EXPECT_EQ(oracle.timesteps, expected);
  auto b = sampler.sample(oracle, noise, at::detail::createCPUGenerator(2), nullptr);
  EXPECT_TRUE(torch::equal(a, b));
}

// Errors for step counts that double each time must fall each time, by about 2^order between the two
// finest counts (order 1: Euler, DDIM; order 2: DPM-Solver++(2M); coarser counts may not have reached
// the asymptotic rate), and the last must be small: the sampler converges, at its order, to the exact
// solution.
inline void expect_convergence(const std::vector<double>& errors, double order, double last_below) {
  for (size_t i = 1; i < errors.size(); ++i) EXPECT_LT(errors[i], errors[i - 1]) << "step count #" << i;
  const size_t n = errors.size();
  EXPECT_NEAR(std::log2(errors[n - 2] / errors[n - 1]), order, 0.25 * order) << errors[n - 2] << " -> " << errors[n - 1];
  EXPECT_LT(errors.back(), last_below);
}

}  // namespace asg::testing
