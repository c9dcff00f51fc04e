#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/kinds/temporal.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {
std::shared_ptr<asg::TemporalModule> make(const std::map<std::string, asg::ParamValue>& p, int64_t h = 4, int64_t w = 4) {
  return make_under_test<asg::TemporalModule>("sti", p, asg::TemporalContext{"mid", 16, 8, h, w});
}
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.normal_(0, 0.2);
}
}  // namespace

TEST(Sti, ReleasedDefaultsHaveTheReleasedStructure) {
  torch::manual_seed(0);
  auto m = make({});
  auto params = m->named_parameters();
  // diffusers Attention(C, heads = 8, dim_head = 32): q/k/v without bias, output projection with.
  EXPECT_EQ(params["to_q.weight"].sizes(), (std::vector<int64_t>{256, 16}));
  EXPECT_FALSE(params.contains("to_q.bias"));
  EXPECT_EQ(params["to_out.weight"].sizes(), (std::vector<int64_t>{16, 256}));
  // Detail: 2 ResnetBlock2D(8 -> 8) over frames-as-channels.
  EXPECT_EQ(params["detail0.conv1.weight"].sizes(), (std::vector<int64_t>{8, 8, 3, 3}));
  EXPECT_TRUE(params.contains("detail1.conv2.weight"));
  EXPECT_FALSE(params.contains("detail2.conv1.weight"));
  // Fusion w1 = 0, w2 = 1; then GroupNorm, so not the identity.
  EXPECT_EQ(params["w_semantic"].item<float>(), 0.0f);
  EXPECT_EQ(params["w_detail"].item<float>(), 1.0f);
  EXPECT_TRUE(params.contains("norm.weight"));
  EXPECT_FALSE(m->identity_at_init());
}

TEST(Sti, IsTheIdentityAtInitWithoutTheNormAndWithAnIdentityDetailBranch) {
  auto x = torch::randn({2, 16, 8, 4, 4});
  for (const std::string detail : {"temporal_conv", "frame_resnet"}) {
    for (const std::string fusion : {"scalar", "mlp"}) {
      torch::manual_seed(0);
      auto m = make({{"norm_after_fusion", false}, {"detail", detail}, {"detail_zero_init", true}, {"fusion", fusion}});
      EXPECT_TRUE(m->identity_at_init()) << detail << " " << fusion;
      EXPECT_TRUE(torch::allclose(m->forward(x), x, 1e-6, 1e-6)) << detail << " " << fusion;
    }
  }
}

TEST(Sti, SemanticBranchConnectsDistantFramesAndPositions) {
  // With the detail branch off the path (w2 = 0) and the semantic branch on (w1 = 1), a change at
  // frame 0, top-left reaches frame 7, bottom-right: joint space-time attention.
  torch::manual_seed(0);
  auto m = make({{"norm_after_fusion", false}, {"detail", std::string("temporal_conv")}, {"detail_layers", int64_t{1}}});
  randomise(*m);
  {
    torch::NoGradGuard g;
    auto params = m->named_parameters();
    params["w_semantic"].fill_(1);
    params["w_detail"].fill_(0);
  }
  auto x = torch::randn({1, 16, 8, 4, 4}, torch::requires_grad());
  m->forward(x).select(2, 7)[0].select(1, 3).select(1, 3).sum().backward();
  EXPECT_GT(x.grad()[0].select(1, 0)[0][0].abs().sum().item<double>(), 0.0);
}

TEST(Sti, SdpaAttentionMatchesNaiveInForwardAndBackward) {
  // In float64 the two agree to rounding; in float32 the q/k gradients may differ by a few 1e-4 relative,
  // from the cancellation in dS = P o (dP - rowsum(dO o O)) that the two compute in different orders.
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    auto run = [dtype](const std::string& backend) {
      torch::manual_seed(0);
      auto m = make({{"attention_backend", backend}, {"downsample", false}});
      m->to(dtype);
      randomise(*m);
      torch::manual_seed(1);
      auto x = torch::randn({2, 16, 8, 4, 4}, torch::TensorOptions().dtype(dtype).requires_grad(true));
      auto y = m->forward(x);
      (y * y).sum().backward();
      std::vector<torch::Tensor> out = {y.detach(), x.grad()};
      for (auto& p : m->parameters()) out.push_back(p.grad());
      return out;
    };
    auto naive = run("naive"), sdpa = run("sdpa");
    ASSERT_EQ(naive.size(), sdpa.size());
    const double tolerance = dtype == torch::kFloat64 ? 1e-10 : 2e-3;
    for (size_t i = 0; i < naive.size(); ++i)
      EXPECT_TRUE(torch::allclose(naive[i], sdpa[i], tolerance, tolerance))
          << dtype << " tensor " << i << ": max difference " << (naive[i] - sdpa[i]).abs().max().item<double>() << " of "
          << naive[i].abs().max().item<double>();
  }
}

TEST(Sti, MlpFusionPredictsPerClipWeightsStartingAtZeroAndOne) {
  torch::manual_seed(0);
  auto m = make({{"fusion", std::string("mlp")}, {"norm_after_fusion", false}, {"detail_zero_init", true}});
  auto params = m->named_parameters();
  EXPECT_TRUE(torch::equal(params["fusion_mlp.2.bias"], torch::tensor({0.0f, 1.0f})));
  EXPECT_EQ(params["fusion_mlp.2.weight"].abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(params.contains("w_semantic"));
}

TEST(Sti, DownsamplingAnOddSizeIsRefusedNamingTheKeyAndThePoint) {
  try {
    make({}, 5, 4);
    FAIL() << "expected a config error";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(),
                 "downsample = true needs an even height and width, but insertion point 'mid' is 5x4 (valid "
                 "there: downsample = false)");
  }
  EXPECT_NO_THROW(make({{"downsample", false}}, 5, 4));
}
