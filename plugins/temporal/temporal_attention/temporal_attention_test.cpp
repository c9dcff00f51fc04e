#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/kinds/temporal.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {
std::shared_ptr<asg::TemporalModule> make(const std::map<std::string, asg::ParamValue>& p, int64_t channels = 16,
                                          int64_t frames = 6) {
  return make_under_test<asg::TemporalModule>("temporal_attention", p, asg::TemporalContext{"down0_0", channels, frames, 3, 4});
}
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.normal_(0, 0.3);
}
}  // namespace

TEST(TemporalAttention, StartsAsIdentityBecauseTheOutputProjectionIsZero) {
  torch::manual_seed(0);
  auto m = make({});
  auto x = torch::randn({2, 16, 6, 3, 4});
  EXPECT_TRUE(m->identity_at_init());
  EXPECT_TRUE(torch::equal(m->forward(x), x));
  auto params = m->named_parameters();
  EXPECT_EQ(params["proj_out.weight"].abs().sum().item<double>(), 0.0);
  EXPECT_GT(params["proj_in.weight"].abs().sum().item<double>(), 0.0);
}

TEST(TemporalAttention, AttendsOnlyAlongTimeAtEachPosition) {
  torch::manual_seed(0);
  auto m = make({});
  randomise(*m);
  auto x = torch::randn({1, 16, 6, 3, 4});
  auto base = m->forward(x);
  auto poked = x.clone();
  poked[0].select(1, 0).select(1, 1).select(1, 2) += 2.0;  // every channel of frame 0 at position (1, 2)
  auto diff = (m->forward(poked) - base).abs().sum(1)[0];      // [T, H, W]
  // Every frame at the poked position changes. Elsewhere only the input GroupNorm's statistics (shared
  // by all positions) carry the change, which is smaller.
  for (int64_t t = 0; t < 6; ++t) {
    auto frame = diff[t].clone();
    double at_poke = frame[1][2].item<double>();
    frame[1][2] = 0;
    EXPECT_GT(at_poke, 2 * frame.max().item<double>()) << "frame " << t;
  }
}

TEST(TemporalAttention, FrameOrderMattersOnlyWithAPositionEmbedding) {
  // Self-attention is permutation-equivariant: without positions, reversing the frames of the input
  // reverses the output. With the sinusoidal embedding it must not.
  for (const std::string position : {"none", "sinusoidal", "learned"}) {
    torch::manual_seed(0);
    auto m = make({{"position", position}});
    randomise(*m);
    auto x = torch::randn({1, 16, 6, 3, 4});
    auto reversed_then_run = m->forward(x.flip(2));
    auto run_then_reversed = m->forward(x).flip(2);
    bool equivariant = torch::allclose(reversed_then_run, run_then_reversed, 1e-4, 1e-5);
    EXPECT_EQ(equivariant, position == "none") << position;
  }
}

TEST(TemporalAttention, SdpaAndNaiveAttentionAgree) {
  torch::manual_seed(3);
  auto naive = make({{"attention_backend", std::string("naive")}});
  torch::manual_seed(3);
  auto sdpa = make({{"attention_backend", std::string("sdpa")}});
  torch::manual_seed(4);
  randomise(*naive);
  torch::manual_seed(4);
  randomise(*sdpa);
  auto x = torch::randn({2, 16, 6, 3, 4});
  EXPECT_TRUE(torch::allclose(naive->forward(x), sdpa->forward(x), 1e-5, 1e-5));
}

TEST(TemporalAttention, HeadsThatDoNotDivideTheChannelsAreRefusedNamingThePoint) {
  try {
    make({{"heads", int64_t{5}}}, 24);
    FAIL() << "expected a config error";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(),
                 "heads = 5 does not divide the 24 channels at insertion point 'down0_0' "
                 "(valid: a divisor of every level's channels, e.g. 1)");
  }
}
