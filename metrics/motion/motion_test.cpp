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
  auto m = make_under_test<asg::Metric>("motion", params, asg::testing::clip_context(generated.size(1)));
  return asg::testing::metric_results(*m, generated, asg::testing::as_references(references));
}

}  // namespace

TEST(Motion, AStillClipIsFrozenAndAMovingOneIsNot) {
  const auto still = asg::testing::moving_disc(8, 16, 3, 0).unsqueeze(0);
  const auto moving = asg::testing::moving_disc(8, 16, 3, 1).unsqueeze(0);
  auto r = evaluate(still, moving);
  EXPECT_EQ(r["motion.magnitude"], 0);
  EXPECT_EQ(r["motion.diversity"], 0);
  EXPECT_EQ(r["motion.frozen_fraction"], 1);
  EXPECT_GT(r["motion.magnitude_reference"], 0.01);
  r = evaluate(torch::cat({still, moving}), torch::cat({still, moving}));
  EXPECT_EQ(r["motion.frozen_fraction"], 0.5);
  EXPECT_NEAR(r["motion.magnitude"], r["motion.magnitude_reference"], 1e-12);
}

TEST(Motion, ReversingKeepsEveryValueAndShufflingRaisesMagnitudeNotDiversity) {
  torch::manual_seed(0);
  const auto clip = asg::testing::moving_disc(8, 16, 3, 1).unsqueeze(0);
  const auto reversed = clip.flip(1);
  const auto shuffled = clip.index_select(1, torch::tensor({0, 5, 2, 7, 1, 4, 6, 3}));
  auto forward = evaluate(clip, clip), backward = evaluate(reversed, clip), mixed = evaluate(shuffled, clip);
  EXPECT_NEAR(backward["motion.magnitude"], forward["motion.magnitude"], 1e-12);
  EXPECT_NEAR(backward["motion.diversity"], forward["motion.diversity"], 1e-12);
  EXPECT_GT(mixed["motion.magnitude"], 1.5 * forward["motion.magnitude"]);  // jumps instead of steps
  EXPECT_NEAR(mixed["motion.diversity"], forward["motion.diversity"], 1e-12);  // the same set of frames
}

TEST(Motion, ColourUnderTransparentPixelsIsNotMotion) {
  auto clip = asg::testing::moving_disc(6, 16, 3, 0).unsqueeze(0);
  auto noisy = clip.clone();
  const auto transparent = (noisy.select(2, 3) == 0).unsqueeze(2).expand_as(noisy.narrow(2, 0, 3));
  noisy.narrow(2, 0, 3).masked_scatter_(transparent, torch::rand(noisy.narrow(2, 0, 3).sizes()).masked_select(transparent));
  EXPECT_EQ(evaluate(noisy, clip)["motion.magnitude"], 0);
}

TEST(Motion, PaddedReferenceFramesAreNotCountedAsStill) {
  auto moving = asg::testing::moving_disc(8, 16, 3, 1);
  auto padded = moving.clone();
  padded.slice(0, 4).copy_(moving[3].unsqueeze(0).expand({4, 4, 16, 16}));  // the loader's repeat-last padding
  asg::Sticker reference{"r", padded, {}, "", {}, torch::tensor({1, 1, 1, 1, 0, 0, 0, 0}, torch::kFloat)};
  auto m = make_under_test<asg::Metric>("motion", {}, asg::testing::clip_context(8));
  auto r = asg::testing::metric_results(*m, moving.unsqueeze(0), {reference});
  auto first_four = evaluate(moving.slice(0, 0, 4).unsqueeze(0), moving.slice(0, 0, 4).unsqueeze(0));
  EXPECT_NEAR(r["motion.magnitude_reference"], first_four["motion.magnitude"], 1e-12);
}

TEST(Motion, OneFrameDataIsRefusedNamingTheDataset) {
  EXPECT_THROW(make_under_test<asg::Metric>("motion", {}, asg::testing::clip_context(1)), asg::Error);
}
