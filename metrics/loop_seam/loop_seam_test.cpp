#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "asg/kinds/metric.h"
#include "metric_driver.h"
#include "plugin_under_test.h"
#include "test_clips.h"

using asg::testing::make_under_test;

namespace {
std::map<std::string, double> evaluate(const torch::Tensor& generated, const torch::Tensor& references) {
  auto m = make_under_test<asg::Metric>("loop_seam", {}, asg::testing::clip_context(generated.size(1)));
  return asg::testing::metric_results(*m, generated, asg::testing::as_references(references));
}
}  // namespace

TEST(LoopSeam, APerfectLoopScoresOneAndADriftScoresAboutItsLength) {
  // 16 px canvas, 2 px per frame over 8 frames: frame 8 would be frame 0 again, so the seam is one more step.
  const auto loop = asg::testing::moving_disc(8, 16, 3, 2).unsqueeze(0);
  EXPECT_NEAR(evaluate(loop, loop)["loop_seam"], 1.0, 1e-9);
  // A steady change that never returns: the seam undoes all 7 steps at once.
  auto ramp = torch::zeros({1, 8, 4, 4, 4});
  for (int64_t t = 0; t < 8; ++t) ramp[0][t].fill_(static_cast<double>(t) / 7.0);  // opaque grey brightening steadily
  ramp.select(2, 3).fill_(1);
  EXPECT_NEAR(evaluate(ramp, ramp)["loop_seam"], 7.0, 1e-9);
}

TEST(LoopSeam, StillClipsScoreZeroReversedClipsTheSameAndReferencesAreReported) {
  const auto still = asg::testing::moving_disc(8, 16, 3, 0).unsqueeze(0);
  const auto loop = asg::testing::moving_disc(8, 16, 3, 2).unsqueeze(0);
  auto r = evaluate(still, loop);
  EXPECT_EQ(r["loop_seam"], 0);
  EXPECT_NEAR(r["loop_seam.reference"], 1.0, 1e-9);
  const auto drift = asg::testing::moving_disc(8, 16, 2, 1).unsqueeze(0);  // 8 of 16 px: no loop
  EXPECT_NEAR(evaluate(drift.flip(1), loop)["loop_seam"], evaluate(drift, loop)["loop_seam"], 1e-12);
  EXPECT_GT(evaluate(drift, loop)["loop_seam"], 1.0);
}

TEST(LoopSeam, TwoFrameDataIsRefused) {
  EXPECT_THROW(make_under_test<asg::Metric>("loop_seam", {}, asg::testing::clip_context(2)), asg::Error);
}
