#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "metric_driver.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {

asg::MetricContext context() {
  asg::MetricContext ctx;
  ctx.data = asg::DatasetInfo{4, 8, 8, 4.0, {}, {}};
  return ctx;
}

std::vector<asg::Sticker> as_refs(const torch::Tensor& clips) {
  std::vector<asg::Sticker> out;
  for (int64_t i = 0; i < clips.size(0); ++i) out.push_back(asg::Sticker{"r", clips[i], {}, "", {}, {}});
  return out;
}

double distance(const torch::Tensor& fake, const torch::Tensor& real, std::map<std::string, asg::ParamValue> p = {}) {
  auto m = make_under_test<asg::Metric>("frechet_pixel", p, context());
  auto v = asg::testing::metric_values(*m, fake, as_refs(real));
  EXPECT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].key, "frechet_pixel");
  EXPECT_FALSE(v[0].higher_is_better);
  return v[0].value;
}

}  // namespace

TEST(FrechetPixel, ZeroForIdenticalSetsAndGrowsWithDifference) {
  torch::manual_seed(0);
  auto real = torch::rand({64, 4, 4, 8, 8});
  EXPECT_NEAR(distance(real, real), 0.0, 1e-5);  // rank-deficient (N < d): eigh round-off
  auto near = distance((real + 0.05).clamp(0, 1), real);
  auto far = distance((real + 0.3).clamp(0, 1), real);
  EXPECT_GT(near, 1e-4);
  EXPECT_GT(far, near);
}

TEST(FrechetPixel, ColourUnderTransparentPixelsDoesNotMatter) {
  torch::manual_seed(0);
  auto real = torch::rand({32, 4, 4, 8, 8});
  real.select(2, 3).copy_((real.select(2, 3) > 0.5).to(torch::kFloat));
  auto fake = real.clone();
  auto transparent = (fake.select(2, 3) == 0).unsqueeze(2).expand({32, 4, 3, 8, 8});
  fake.narrow(2, 0, 3).masked_fill_(transparent, 0.123f);
  EXPECT_NEAR(distance(fake, real), 0.0, 1e-5);
}

TEST(FrechetPixel, SeesMotionNotOnlyAppearance) {
  // Same frames in a different order: identical per-frame statistics only if motion is ignored.
  torch::manual_seed(0);
  auto real = torch::rand({48, 4, 4, 8, 8});
  auto shuffled = real.index_select(1, torch::tensor({0, 2, 1, 3}));
  EXPECT_GT(distance(shuffled, real), 1e-3);
}

TEST(FrechetPixel, PoolMustDivideFrameSize) {
  EXPECT_THROW(make_under_test<asg::Metric>("frechet_pixel", {{"pool", int64_t{3}}}, context()), asg::Error);
}
