#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/temporal.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

TEST(TemporalConv, StartsAsIdentityWithModelScopeStructure) {
  torch::manual_seed(0);
  auto m = make_under_test<asg::TemporalModule>("temporal_conv", {}, asg::TemporalContext{16, 8, 4, 4});
  auto x = torch::randn({2, 16, 8, 4, 4});
  EXPECT_TRUE(torch::equal(m->forward(x), x));
  // Four GroupNorm-SiLU-Conv3d(3,1,1) layers; only the last conv is zero.
  int convs = 0;
  for (const auto& p : m->named_parameters()) {
    if (p.key().find("weight") != std::string::npos && p.value().dim() == 5) {
      ++convs;
      EXPECT_EQ(p.value().sizes().slice(2), (std::vector<int64_t>{3, 1, 1})) << p.key();
      EXPECT_EQ(p.value().abs().sum().item<double>() == 0, p.key().rfind("conv4", 0) == 0) << p.key();
    }
  }
  EXPECT_EQ(convs, 4);
}

TEST(TemporalConv, MixesInformationAcrossNeighbouringFrames) {
  torch::manual_seed(0);
  auto m = make_under_test<asg::TemporalModule>("temporal_conv", {}, asg::TemporalContext{8, 6, 5, 5});
  { torch::NoGradGuard g; for (auto& p : m->parameters()) if (p.dim() == 5) p.normal_(0, 0.3); }
  auto x = torch::zeros({1, 8, 6, 5, 5});
  auto base = m->forward(x);
  auto poked = x.clone();
  poked[0][0][2][1][1] = 1;  // one pixel of frame 2
  auto diff = (m->forward(poked) - base).abs().sum(1)[0];  // [T, H, W]
  EXPECT_GT(diff[3][1][1].item<double>(), 1e-4);   // reaches the next frame
  EXPECT_GT(diff[1][1][1].item<double>(), 1e-4);   // and the previous one
  // (Other pixels change too, through the GroupNorm statistics; the convs themselves are (3,1,1).)
}

TEST(TemporalConv, NarrowLayersUseCompatibleGroupCount) {
  auto m = make_under_test<asg::TemporalModule>("temporal_conv", {}, asg::TemporalContext{12, 4, 2, 2});
  EXPECT_EQ(m->forward(torch::randn({1, 12, 4, 2, 2})).sizes(), (std::vector<int64_t>{1, 12, 4, 2, 2}));
}
