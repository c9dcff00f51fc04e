#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "asg/kinds/metric.h"
#include "metric_driver.h"
#include "plugin_under_test.h"
#include "test_clips.h"

using asg::testing::make_under_test;

namespace {
std::map<std::string, double> evaluate(const torch::Tensor& generated, const torch::Tensor& references,
                                       std::map<std::string, asg::ParamValue> params = {}) {
  auto m = make_under_test<asg::Metric>("temporal_flickering", params, asg::testing::clip_context(generated.size(1)));
  return asg::testing::metric_results(*m, generated, asg::testing::as_references(references));
}
}  // namespace

TEST(TemporalFlickering, VBenchValuesOnConstructedClips) {
  // A constant clip scores exactly 1.
  const auto still = asg::testing::moving_disc(8, 16, 3, 0).unsqueeze(0);
  EXPECT_EQ(evaluate(still, still)["temporal_flickering"], 1.0);
  // Opaque frames alternating black / white: every pair differs by 255 -> (255 - 255) / 255 = 0.
  auto blink = torch::zeros({1, 4, 4, 8, 8});
  blink.select(2, 3).fill_(1);
  blink[0][1].narrow(0, 0, 3).fill_(1);
  blink[0][3].narrow(0, 0, 3).fill_(1);
  EXPECT_EQ(evaluate(blink, blink)["temporal_flickering"], 0.0);
  // Grey steps of 51 (0.2 * 255) on every channel: (255 - 51) / 255 = 0.8.
  auto ramp = torch::zeros({1, 4, 4, 8, 8});
  for (int64_t t = 0; t < 4; ++t) ramp[0][t].narrow(0, 0, 3).fill_(0.2 * static_cast<double>(t));
  ramp.select(2, 3).fill_(1);
  EXPECT_NEAR(evaluate(ramp, ramp)["temporal_flickering"], 0.8, 1e-12);
}

TEST(TemporalFlickering, ReversedIsTheSameAndShuffledIsWorse) {
  const auto clip = asg::testing::moving_disc(8, 16, 3, 1).unsqueeze(0);
  const auto shuffled = clip.index_select(1, torch::tensor({0, 5, 2, 7, 1, 4, 6, 3}));
  const double forward = evaluate(clip, clip)["temporal_flickering"];
  EXPECT_NEAR(evaluate(clip.flip(1), clip)["temporal_flickering"], forward, 1e-12);
  EXPECT_LT(evaluate(shuffled, clip)["temporal_flickering"], forward);
  EXPECT_NEAR(evaluate(shuffled, clip)["temporal_flickering.reference"], forward, 1e-12);
}

TEST(TemporalFlickering, TheBackgroundIsWhatTransparentPixelsShow) {
  // A red disc appearing and disappearing: over red it is invisible, over white it flickers.
  auto blink = asg::testing::moving_disc(4, 16, 4, 0).unsqueeze(0);
  blink[0][1].select(0, 3).zero_();
  blink[0][3].select(0, 3).zero_();
  EXPECT_EQ(evaluate(blink, blink, {{"background", std::vector<int64_t>{255, 0, 0}}})["temporal_flickering"], 1.0);
  EXPECT_LT(evaluate(blink, blink)["temporal_flickering"], 0.99);
}
