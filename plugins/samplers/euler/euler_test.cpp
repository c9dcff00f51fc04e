#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/kinds/sampler.h"
#include "gaussian_oracle.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {

constexpr double kMean = 0.3, kStd = 0.4;  // the data: x0 ~ N(0.3, 0.4^2)

TEST(Euler, ConvergesToTheExactODESolutionAtFirstOrder) {
  for (auto prediction : {asg::Prediction::Epsilon, asg::Prediction::V, asg::Prediction::X0})
    for (const char* schedule : {"scaled_linear", "cosine"}) {
      const auto errors = asg::testing::ode_errors(
          [](int64_t n) { return make_under_test<asg::Sampler>("euler", {{"steps", n}, {"guidance_scale", 1.0}, {"clip_x0", false}}); },
          asg::NoiseSchedule(schedule, 1000, prediction), kMean, kStd, {10, 20, 40, 80, 160});
      SCOPED_TRACE(schedule);
      asg::testing::expect_convergence(errors, 1.0, 0.03);
    }
}

TEST(Euler, IsDeterministicAndTrailingSpacingStartsAtTheLastTimestep) {
  auto euler = make_under_test<asg::Sampler>("euler", {{"steps", int64_t{4}}, {"timestep_spacing", std::string("trailing")}});
  asg::testing::expect_deterministic_visiting(*euler, asg::NoiseSchedule("cosine", 1000, asg::Prediction::V), {999, 749, 499, 249});
}

}  // namespace
