#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/sampler.h"
#include "gaussian_oracle.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {

constexpr double kMean = 0.3, kStd = 0.4;  // the data: x0 ~ N(0.3, 0.4^2)

TEST(DpmSolverPlusPlus, ConvergesToTheExactODESolutionAtSecondOrder) {
  // Linspace steps start at T - 1, where the first log-SNR step is huge: the second-order rate shows from
  // ~40 steps on the cosine schedule, and later on scaled_linear (order 1.7 between 160 and 320 steps,
  // as a float64 re-computation of the same solver gives too).
  for (auto prediction : {asg::Prediction::Epsilon, asg::Prediction::V, asg::Prediction::X0})
    for (const auto& [schedule, steps] : {std::pair<const char*, std::vector<int64_t>>{"cosine", {20, 40, 80, 160}},
                                          std::pair<const char*, std::vector<int64_t>>{"scaled_linear", {40, 80, 160, 320}}}) {
      const auto errors = asg::testing::ode_errors(
          [](int64_t n) {
            return make_under_test<asg::Sampler>("dpm_solver_pp", {{"steps", n}, {"guidance_scale", 1.0}, {"clip_x0", false}});
          },
          asg::NoiseSchedule(schedule, 1000, prediction), kMean, kStd, steps);
      SCOPED_TRACE(schedule);
      asg::testing::expect_convergence(errors, 2.0, 0.005);
    }
}

TEST(DpmSolverPlusPlus, IsDeterministicAndVisitsTheSpacedTimesteps) {
  auto solver = make_under_test<asg::Sampler>(
      "dpm_solver_pp", {{"steps", int64_t{4}}, {"timestep_spacing", std::string("leading")}, {"steps_offset", int64_t{1}}});
  asg::testing::expect_deterministic_visiting(*solver, asg::NoiseSchedule("scaled_linear", 1000, asg::Prediction::Epsilon),
                                              {751, 501, 251, 1});
}

}  // namespace
