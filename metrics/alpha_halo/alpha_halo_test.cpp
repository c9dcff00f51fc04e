#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "asg/kinds/metric.h"
#include "metric_driver.h"
#include "plugin_under_test.h"
#include "test_clips.h"

using asg::testing::make_under_test;

namespace {

// One clip of 4 frames, 12 x 12: an opaque red 4 x 4 square at [4, 8) with a one-pixel rim around it (the
// rest of the 6 x 6 block [3, 9)) of the given alpha and colour; transparent elsewhere.
torch::Tensor square_with_rim(double rim_alpha, std::array<double, 3> rim_colour) {
  auto clip = torch::zeros({1, 4, 4, 12, 12}, torch::kFloat32);
  for (int c = 0; c < 3; ++c) clip.slice(3, 3, 9).slice(4, 3, 9).select(2, c).fill_(rim_colour[c]);
  clip.slice(3, 3, 9).slice(4, 3, 9).select(2, 3).fill_(rim_alpha);
  auto square = clip.slice(3, 4, 8).slice(4, 4, 8);
  square.select(2, 0).fill_(1);
  square.select(2, 1).fill_(0);
  square.select(2, 2).fill_(0);
  square.select(2, 3).fill_(1);
  return clip;
}

std::map<std::string, double> evaluate(const torch::Tensor& generated, const torch::Tensor& references,
                                       const std::map<std::string, asg::ParamValue>& params = {}) {
  auto m = make_under_test<asg::Metric>("alpha_halo", params, asg::testing::clip_context(generated.size(1), 12));
  return asg::testing::metric_results(*m, generated, asg::testing::as_references(references));
}

}  // namespace

TEST(AlphaHalo, AnAntialiasedEdgeOfTheObjectsColourHasNoHalo) {
  const auto clean = square_with_rim(0.5, {1, 0, 0});
  auto r = evaluate(clean, clean);
  EXPECT_EQ(r["alpha_halo"], 0);
  EXPECT_EQ(r["alpha_halo.matte_ring"], 0);  // the opaque square touches no transparent pixel
  EXPECT_EQ(r["alpha_halo.reference"], 0);
  // Binary alpha has no semi-transparent edge at all.
  EXPECT_EQ(evaluate(square_with_rim(0, {0, 0, 0}), clean)["alpha_halo"], 0);
}

TEST(AlphaHalo, DarkAndWhiteFringesAreMeasuredExactly) {
  const auto clean = square_with_rim(0.5, {1, 0, 0});
  // Premultiplied colour stored as straight colour: the rim at alpha 0.5 holds (0.5, 0, 0): |0.5 - 1| / 3.
  auto dark = evaluate(square_with_rim(0.5, {0.5, 0, 0}), clean);
  EXPECT_NEAR(dark["alpha_halo"], 1.0 / 6.0, 1e-12);
  EXPECT_EQ(dark["alpha_halo.reference"], 0);
  // A white matte baked into the rim: (0 + 1 + 1) / 3.
  EXPECT_NEAR(evaluate(square_with_rim(0.5, {1, 1, 1}), clean)["alpha_halo"], 2.0 / 3.0, 1e-12);
  // Two clips, one clean and one white-fringed: the mean over clips.
  const auto both = torch::cat({clean, square_with_rim(0.5, {1, 1, 1})});
  EXPECT_NEAR(evaluate(both, both)["alpha_halo"], 1.0 / 3.0, 1e-12);
}

TEST(AlphaHalo, AnOpaqueRingOfTheMatteColourIsCounted) {
  const auto white_ring = square_with_rim(1, {1, 1, 1});
  auto r = evaluate(white_ring, square_with_rim(1, {1, 0, 0}));
  EXPECT_EQ(r["alpha_halo"], 0);  // binary alpha: no semi-transparent edge
  EXPECT_EQ(r["alpha_halo.matte_ring"], 1);  // every rim pixel is white
  EXPECT_EQ(r["alpha_halo.matte_ring_reference"], 0);  // the reference's rim is red
  // Another matte colour: the white ring is not of it.
  EXPECT_EQ(evaluate(white_ring, white_ring, {{"matte", std::vector<int64_t>{0, 0, 0}}})["alpha_halo.matte_ring"], 0);
}

TEST(AlphaHalo, ThresholdsThatOverlapAreRefused) {
  EXPECT_EQ(asg::testing::config_error_of<asg::Metric>("alpha_halo", {{"opaque_above", 0.5}, {"transparent_below", 0.5}},
                                                  asg::testing::clip_context(4, 12)),
            "alpha_halo: transparent_below = 0.5 must be below opaque_above = 0.5");
}
