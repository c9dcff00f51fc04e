#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <fmt/format.h>

#include "asg/kinds/sampler.h"
#include "asg/nn/safetensors.h"
#include "gaussian_oracle.h"
#include "plugin_under_test.h"
#include "reference_match.h"
#include "test_paths.h"

using asg::testing::make_under_test;

namespace {

// A denoiser that knows the clean clip: it returns the exact network output for x0_ (in v form).
struct Oracle : asg::Denoiser {
  Oracle(torch::Tensor x0, asg::Prediction p) : x0_(std::move(x0)), schedule_("cosine", 1000, p) {}
  torch::Tensor predict(const torch::Tensor& x_t, int64_t t, double scale) override {
    scales.push_back(scale);
    timesteps.push_back(t);
    auto tt = torch::full({x_t.size(0)}, t, torch::kLong);
    auto a = schedule_.abar(tt, x_t);
    auto eps = (x_t - a.sqrt() * x0_) / (1 - a).sqrt();
    return schedule_.target(x0_, eps, tt);
  }
  const asg::NoiseSchedule& schedule() const override { return schedule_; }
  torch::Tensor x0_;
  asg::NoiseSchedule schedule_;
  std::vector<double> scales;
  std::vector<int64_t> timesteps;
};

}  // namespace

TEST(Ddim, RecoversTheCleanClipFromAPerfectDenoiser) {
  for (auto pred : {asg::Prediction::V, asg::Prediction::Epsilon, asg::Prediction::X0}) {
    auto x0 = torch::rand({2, 4, 3, 4, 4}) * 1.8 - 0.9;
    Oracle oracle(x0, pred);
    auto sampler = make_under_test<asg::Sampler>("ddim", {{"steps", int64_t{10}}, {"guidance_scale", 2.5}});
    int64_t calls = 0;
    auto out = sampler->sample(oracle, torch::randn(x0.sizes()), at::detail::createCPUGenerator(1),
                               [&](int64_t, int64_t) { ++calls; });
    EXPECT_LT((out - x0).abs().max().item<double>(), 1e-3);
    EXPECT_EQ(calls, 10);
    EXPECT_EQ(oracle.timesteps.front(), 999);  // linspace spacing starts at T-1 ...
    EXPECT_EQ(oracle.timesteps.back(), 0);     // ... and ends at 0
    for (double s : oracle.scales) EXPECT_EQ(s, 2.5);
  }
}

TEST(Ddim, EtaZeroIsDeterministicEtaOneUsesTheGenerator) {
  struct Zero : asg::Denoiser {
    asg::NoiseSchedule s{"cosine", 1000, asg::Prediction::V};
    torch::Tensor predict(const torch::Tensor& x, int64_t, double) override { return torch::zeros_like(x); }
    const asg::NoiseSchedule& schedule() const override { return s; }
  } model;
  auto noise = torch::randn({1, 4, 2, 4, 4});
  auto ddim = make_under_test<asg::Sampler>("ddim", {{"steps", int64_t{5}}});
  auto a = ddim->sample(model, noise, at::detail::createCPUGenerator(1), nullptr);
  auto b = ddim->sample(model, noise, at::detail::createCPUGenerator(2), nullptr);
  EXPECT_TRUE(torch::equal(a, b));
  auto ddpm = make_under_test<asg::Sampler>("ddim", {{"steps", int64_t{5}}, {"eta", 1.0}});
  auto c = ddpm->sample(model, noise, at::detail::createCPUGenerator(1), nullptr);
  auto d = ddpm->sample(model, noise, at::detail::createCPUGenerator(2), nullptr);
  auto e = ddpm->sample(model, noise, at::detail::createCPUGenerator(1), nullptr);
  EXPECT_FALSE(torch::equal(c, d));
  EXPECT_TRUE(torch::equal(c, e));
}

TEST(Ddim, ConvergesToTheExactODESolutionAtFirstOrder) {
  // x0 ~ N(0.3, 0.4^2): deterministic DDIM is a first-order solver of the probability-flow ODE.
  for (auto prediction : {asg::Prediction::Epsilon, asg::Prediction::V, asg::Prediction::X0})
    for (const char* schedule : {"scaled_linear", "cosine"}) {
      const auto errors = asg::testing::ode_errors(
          [](int64_t n) { return make_under_test<asg::Sampler>("ddim", {{"steps", n}, {"guidance_scale", 1.0}, {"clip_x0", false}}); },
          asg::NoiseSchedule(schedule, 1000, prediction), 0.3, 0.4, {10, 20, 40, 80, 160});
      SCOPED_TRACE(schedule);
      asg::testing::expect_convergence(errors, 1.0, 0.03);
    }
}

TEST(Ddim, EtaOneSamplesTheGaussianDataDistribution) {
  // With eta = 1 every step adds the posterior's noise (DDPM); over all 1000 steps the samples have the
  // data's moments up to sampling error (20000 samples: one standard error is 0.003 on the mean, 0.5% on
  // the std) and the shrinkage of the final x0 estimate (0.3%).
  for (const char* schedule : {"scaled_linear", "cosine"}) {
    auto ddim = make_under_test<asg::Sampler>("ddim", {{"steps", int64_t{1000}}, {"eta", 1.0}, {"guidance_scale", 1.0}, {"clip_x0", false}});
    const auto [mean, std] = asg::testing::gaussian_sample_moments(*ddim, asg::NoiseSchedule(schedule, 1000, asg::Prediction::V), 0.3, 0.4);
    EXPECT_NEAR(mean, 0.3, 0.012) << schedule;
    EXPECT_NEAR(std / 0.4, 1.0, 0.025) << schedule;
  }
}

TEST(Ddim, LeadingSpacingVisitsStableDiffusionsTimesteps) {
  asg::testing::GaussianOracle oracle(0, 1, asg::NoiseSchedule("scaled_linear", 1000, asg::Prediction::Epsilon));
  auto ddim = make_under_test<asg::Sampler>(
      "ddim", {{"steps", int64_t{50}}, {"timestep_spacing", std::string("leading")}, {"steps_offset", int64_t{1}}});
  ddim->sample(oracle, torch::randn({1, 1, 1, 2, 2}), at::detail::createCPUGenerator(1), nullptr);
  ASSERT_EQ(oracle.timesteps.size(), 50u);
  EXPECT_EQ(oracle.timesteps.front(), 981);  // 49 * 20 + 1, as diffusers' DDIMScheduler gives
  EXPECT_EQ(oracle.timesteps.back(), 1);
  for (size_t i = 1; i < 50; ++i) EXPECT_EQ(oracle.timesteps[i - 1] - oracle.timesteps[i], 20);
}

namespace {
// The fixture's analytic network, out(x, t) = tanh(x) (0.5 + t / 2000) + 0.05, under a given schedule.
struct AnalyticNetwork : asg::Denoiser {
  explicit AnalyticNetwork(asg::NoiseSchedule s) : s_(std::move(s)) {}
  torch::Tensor predict(const torch::Tensor& x, int64_t t, double) override {
    timesteps.push_back(t);
    return torch::tanh(x) * (0.5 + static_cast<double>(t) / 2000) + 0.05;
  }
  const asg::NoiseSchedule& schedule() const override { return s_; }
  asg::NoiseSchedule s_;
  std::vector<int64_t> timesteps;
};
}  // namespace

TEST(Ddim, MatchesDiffusersDdimSchedulerIncludingItsFinalAlpha) {
  // Leading spacing (diffusers' DDIM steps back by T/n, which is the visited sequence exactly for leading).
  struct Case {
    std::string schedule, diffusers_schedule, prediction, diffusers_prediction;
    double beta_start, beta_end;
    int64_t steps, offset;
    bool set_alpha_to_one;
  };
  const std::vector<Case> cases = {
      {"scaled_linear", "scaled_linear", "eps", "epsilon", 0.00085, 0.012, 50, 1, false},  // ModelScope's config
      {"scaled_linear", "scaled_linear", "eps", "epsilon", 0.00085, 0.012, 50, 1, true},
      {"linear", "linear", "v", "v_prediction", 0.0002, 0.03, 20, 0, false},              // betas not the defaults
      {"cosine", "squaredcos_cap_v2", "v", "v_prediction", 0, 0, 10, 1, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.schedule + " " + c.prediction + " set_alpha_to_one=" + std::to_string(c.set_alpha_to_one));
    const auto dir = asg::testing::make_temp_dir("ddim-reference");
    const auto file = dir / "ddim.safetensors";
    const double fixture_start = c.schedule == "cosine" ? 0.0001 : c.beta_start, fixture_end = c.schedule == "cosine" ? 0.02 : c.beta_end;
    ASSERT_TRUE(asg::testing::write_fixture(
        "ddim_reference.py", file,
        fmt::format("--schedule {} --beta {} {} --prediction {} --steps {} --steps-offset {} --set-alpha-to-one {}", c.diffusers_schedule,
                    fixture_start, fixture_end, c.diffusers_prediction, c.steps, c.offset, c.set_alpha_to_one ? 1 : 0)));
    auto ref = asg::nn::read_safetensors(file).tensors;
    AnalyticNetwork network(asg::NoiseSchedule(c.schedule, 1000, asg::parse_prediction(c.prediction), 1.0,
                                               asg::BetaOptions{c.beta_start, c.beta_end}));
    auto ddim = make_under_test<asg::Sampler>("ddim", {{"steps", c.steps}, {"timestep_spacing", std::string("leading")},
                                                      {"steps_offset", c.offset}, {"clip_x0", false}, {"guidance_scale", 1.0},
                                                      {"set_alpha_to_one", c.set_alpha_to_one}});
    auto out = ddim->sample(network, ref["x_T"], at::detail::createCPUGenerator(0), nullptr);
    auto visited = torch::tensor(network.timesteps, torch::kLong);
    EXPECT_TRUE(torch::equal(visited, ref["timesteps"]));
    EXPECT_TRUE(asg::testing::matches_reference(out, ref["final"], 1e-5));
    std::filesystem::remove_all(dir);
  }
}
