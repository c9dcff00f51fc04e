#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/kinds/temporal.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {

// A module at insertion point `index` with every parameter moved off its initial value (proj_out starts
// at zero, which would hide everything behind the identity).
std::shared_ptr<asg::TemporalModule> trained_like(int64_t index, int64_t window = 4) {
  torch::manual_seed(1);
  auto m = make_under_test<asg::TemporalModule>("swap_attention", {{"window", window}, {"heads", int64_t{2}}},
                                                asg::TemporalContext{"p", 8, 5, 8, 8, index});
  torch::NoGradGuard no_grad;
  torch::manual_seed(2);
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.2);
  return m;
}

TEST(SwapAttention, StartsAsTheIdentity) {
  auto m = make_under_test<asg::TemporalModule>("swap_attention", {}, asg::TemporalContext{"p", 8, 5, 8, 8, 0});
  auto x = torch::randn({2, 8, 5, 8, 8});
  EXPECT_TRUE(torch::equal(m->forward(x), x));
}

TEST(SwapAttention, AttentionStaysInsideItsThreeDimensionalWindow) {
  // 8x8 frames in 4x4 windows: changing every frame of the top-left window changes nothing in the
  // bottom-right one, at either parity; it does change other frames inside its own window.
  for (int64_t index : {0, 1}) {
    auto m = trained_like(index);
    torch::manual_seed(3);
    auto x = torch::randn({1, 8, 5, 8, 8});
    auto y = x.clone();
    y.narrow(3, 0, 4).narrow(4, 0, 4).add_(1.0);
    torch::NoGradGuard no_grad;
    auto a = m->forward(x), b = m->forward(y);
    EXPECT_TRUE(torch::equal(a.narrow(3, 4, 4).narrow(4, 4, 4), b.narrow(3, 4, 4).narrow(4, 4, 4))) << index;
    EXPECT_FALSE(torch::allclose(a.narrow(3, 0, 4).narrow(4, 0, 4), b.narrow(3, 0, 4).narrow(4, 0, 4))) << index;
  }
}

TEST(SwapAttention, TheQueryRoleSwapsBetweenConsecutivePoints) {
  // The same weights at an even and an odd point: the spatial stream queries the temporal one, or the
  // other way round, so the outputs differ; points of the same parity agree.
  auto even = trained_like(0), odd = trained_like(1), also_even = trained_like(2);
  torch::manual_seed(4);
  auto x = torch::randn({1, 8, 5, 8, 8});
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(torch::allclose(even->forward(x), odd->forward(x)));
  EXPECT_TRUE(torch::equal(even->forward(x), also_even->forward(x)));
}

TEST(SwapAttention, RefusesHeadsThatDoNotDivideTheChannels) {
  try {
    make_under_test<asg::TemporalModule>("swap_attention", {{"heads", int64_t{3}}}, asg::TemporalContext{"down1_0", 8, 5, 8, 8, 2});
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_EQ(std::string(e.what()), "heads = 3 does not divide the 8 channels at insertion point 'down1_0' (valid: a divisor of "
                                     "every level's channels, e.g. 1)");
  }
}

}  // namespace
