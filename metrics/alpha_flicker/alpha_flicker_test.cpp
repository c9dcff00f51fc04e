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
  auto m = make_under_test<asg::Metric>("alpha_flicker", {}, asg::testing::clip_context(generated.size(1)));
  return asg::testing::metric_results(*m, generated, asg::testing::as_references(references));
}
}  // namespace

TEST(AlphaFlicker, StillMovingAndFadingStickersDoNotFlicker) {
  const auto still = asg::testing::moving_disc(8, 16, 3, 0).unsqueeze(0);
  EXPECT_EQ(evaluate(still, still)["alpha_flicker"], 0);
  const auto moving = asg::testing::moving_square(8, 24, 3, 1).unsqueeze(0);
  EXPECT_EQ(evaluate(moving, moving)["alpha_flicker"], 0);
  auto fading = still.clone();
  for (int64_t t = 0; t < 8; ++t) fading[0][t][3] *= static_cast<double>(t) / 7.0;
  EXPECT_EQ(evaluate(fading, fading)["alpha_flicker"], 0);
}

TEST(AlphaFlicker, ABlinkingOutlineFlickersFully) {
  // The disc's outer ring (radius 3 to 5) is present on even frames only.
  auto clip = asg::testing::moving_disc(8, 16, 5, 0).unsqueeze(0);
  const auto core = asg::testing::moving_disc(8, 16, 3, 0);
  for (int64_t t = 1; t < 8; t += 2) clip[0][t].copy_(core[t]);
  EXPECT_NEAR(evaluate(clip, clip)["alpha_flicker"], 1.0, 1e-12);
  // Reversed, it flickers just as much; shuffled frames of a smooth motion start to flicker.
  EXPECT_NEAR(evaluate(clip.flip(1), clip)["alpha_flicker"], 1.0, 1e-12);
  const auto moving = asg::testing::moving_square(8, 24, 3, 1).unsqueeze(0);
  const auto shuffled = moving.index_select(1, torch::tensor({0, 5, 2, 7, 1, 4, 6, 3}));
  auto r = evaluate(shuffled, moving);
  EXPECT_GT(r["alpha_flicker"], 0.3);
  EXPECT_EQ(r["alpha_flicker.reference"], 0);
}

TEST(AlphaFlicker, ChangesBelowTheThresholdAreNoise) {
  torch::manual_seed(0);
  auto clip = asg::testing::moving_disc(8, 16, 4, 0).unsqueeze(0);
  clip.select(2, 3).add_((torch::rand(clip.select(2, 3).sizes()) - 0.5) * 0.02).clamp_(0, 1);  // ±0.01 jitter
  EXPECT_EQ(evaluate(clip, clip)["alpha_flicker"], 0);
}
