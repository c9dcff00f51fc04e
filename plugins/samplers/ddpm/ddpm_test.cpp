#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/sampler.h"
#include "gaussian_oracle.h"
#include "plugin_under_test.h"

using asg::testing::gaussian_sample_moments;
using asg::testing::make_under_test;

namespace {

// x0 ~ N(0.3, 0.4^2). 20000 samples: one standard error is 0.003 on the mean and 0.5% on the std; the
// final x0 estimate shrinks the std by a further 0.3% (the posterior mean at t = 0).
constexpr double kMean = 0.3, kStd = 0.4;

TEST(Ddpm, SamplesTheGaussianDataDistribution) {
  for (auto prediction : {asg::Prediction::Epsilon, asg::Prediction::V, asg::Prediction::X0})
    for (const char* schedule : {"scaled_linear", "cosine"}) {
      auto ddpm = make_under_test<asg::Sampler>("ddpm", {{"guidance_scale", 1.0}, {"clip_x0", false}});
      const auto [mean, std] = gaussian_sample_moments(*ddpm, asg::NoiseSchedule(schedule, 1000, prediction), kMean, kStd);
      EXPECT_NEAR(mean, kMean, 0.012) << schedule;
      EXPECT_NEAR(std / kStd, 1.0, 0.025) << schedule;
    }
}

TEST(Ddpm, FewerStepsConvergeToTheSameDistribution) {
  // Respaced to n steps the chain is coarser: the std falls short (by ~8% at 100 steps on scaled_linear,
  // as a float64 simulation of the same chain gives) and approaches the data's as n grows.
  double previous_gap = 1;
  for (int64_t steps : {25, 100, 400}) {
    auto ddpm = make_under_test<asg::Sampler>("ddpm", {{"steps", steps}, {"guidance_scale", 1.0}, {"clip_x0", false}});
    const auto [mean, std] =
        gaussian_sample_moments(*ddpm, asg::NoiseSchedule("scaled_linear", 1000, asg::Prediction::Epsilon), kMean, kStd);
    const double gap = std::abs(std / kStd - 1);
    EXPECT_LT(gap, previous_gap) << steps;
    previous_gap = gap;
  }
  EXPECT_LT(previous_gap, 0.04);
}

TEST(Ddpm, LargeVarianceAtFullLengthAlsoSamplesIt) {
  auto ddpm = make_under_test<asg::Sampler>("ddpm", {{"variance", std::string("large")}, {"guidance_scale", 1.0}, {"clip_x0", false}});
  const auto [mean, std] = gaussian_sample_moments(*ddpm, asg::NoiseSchedule("linear", 1000, asg::Prediction::Epsilon), kMean, kStd);
  EXPECT_NEAR(mean, kMean, 0.012);
  EXPECT_NEAR(std / kStd, 1.0, 0.03);
}

TEST(Ddpm, VisitsEveryTimestepOnceAndDrawsNoiseOnlyFromTheGenerator) {
  asg::testing::GaussianOracle oracle(kMean, kStd, asg::NoiseSchedule("cosine", 50, asg::Prediction::V));
  auto ddpm = make_under_test<asg::Sampler>("ddpm", {{"guidance_scale", 4.0}});
  auto noise = torch::randn({2, 3, 2, 4, 4});
  int64_t reported = 0;
  auto a = ddpm->sample(oracle, noise, at::detail::createCPUGenerator(1), [&](int64_t i, int64_t n) {
    EXPECT_EQ(n, 50);
    reported = i;
  });
  EXPECT_EQ(reported, 50);
  ASSERT_EQ(oracle.timesteps.size(), 50u);  // steps = 1000 is capped at T = 50
  for (size_t i = 0; i < 50; ++i) EXPECT_EQ(oracle.timesteps[i], 49 - static_cast<int64_t>(i));
  for (double s : oracle.scales) EXPECT_EQ(s, 4.0);
  auto b = ddpm->sample(oracle, noise, at::detail::createCPUGenerator(1), nullptr);
  auto c = ddpm->sample(oracle, noise, at::detail::createCPUGenerator(2), nullptr);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

}  // namespace
