#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/temporal.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "plugin_under_test.h"
#include "reference_match.h"
#include "test_paths.h"

using asg::testing::make_under_test;

TEST(TemporalConv, StartsAsIdentityWithModelScopeStructure) {
  torch::manual_seed(0);
  auto m = make_under_test<asg::TemporalModule>("temporal_conv", {}, asg::TemporalContext{"test", 16, 8, 4, 4});
  auto x = torch::randn({2, 16, 8, 4, 4});
  EXPECT_TRUE(torch::equal(m->forward(x), x));
  // Four GroupNorm-SiLU-Conv3d(3,1,1) layers; only the last conv is zero.
  int convs = 0;
  for (const auto& p : m->named_parameters()) {
    if (p.key().find("weight") != std::string::npos && p.value().dim() == 5) {
      ++convs;
      EXPECT_EQ(p.value().sizes().slice(2), (std::vector<int64_t>{3, 1, 1})) << p.key();
      EXPECT_EQ(p.value().abs().sum().item<double>() == 0, p.key().find("conv4") != std::string::npos) << p.key();
    }
  }
  EXPECT_EQ(convs, 4);
}

TEST(TemporalConv, MixesInformationAcrossNeighbouringFrames) {
  torch::manual_seed(0);
  auto m = make_under_test<asg::TemporalModule>("temporal_conv", {}, asg::TemporalContext{"test", 8, 6, 5, 5});
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
  auto m = make_under_test<asg::TemporalModule>("temporal_conv", {}, asg::TemporalContext{"test", 12, 4, 2, 2});
  EXPECT_EQ(m->forward(torch::randn({1, 12, 4, 2, 2})).sizes(), (std::vector<int64_t>{1, 12, 4, 2, 2}));
}

TEST(TemporalConv, MatchesAConv3dStackWithTheSameWeights) {
  // The stack runs its (3,1,1) convs as (3,1) conv2d over [B, C, T, H*W]; it must equal Conv3d.
  torch::manual_seed(1);
  auto m = make_under_test<asg::TemporalModule>("temporal_conv", {{"layers", int64_t{2}}, {"groups", int64_t{4}}},
                                                asg::TemporalContext{"test", 8, 5, 3, 4});
  { torch::NoGradGuard g; for (auto& p : m->parameters()) p.normal_(0, 0.3); }
  auto params = m->named_parameters();
  auto x = torch::randn({2, 8, 5, 3, 4});
  auto h = x;
  for (int i = 1; i <= 2; ++i) {
    // diffusers' names: convN.0 is the GroupNorm, the Conv3d is convN.2 in the first layer (no Dropout) and
    // convN.3 after.
    auto pre = "conv" + std::to_string(i) + ".0", conv = "conv" + std::to_string(i) + (i == 1 ? ".2" : ".3");
    h = torch::silu(torch::group_norm(h, 4, params[pre + ".weight"], params[pre + ".bias"]));
    h = torch::conv3d(h, params[conv + ".weight"], params[conv + ".bias"], 1, torch::IntArrayRef{1, 0, 0});
  }
  EXPECT_TRUE(torch::allclose(m->forward(x), x + h, 1e-5, 1e-5));
}

TEST(TemporalConv, MatchesDiffusersTemporalConvLayer) {
  // ModelScope's layer as diffusers has it (models/resnet.py TemporalConvLayer), at random weights: its
  // state_dict, loaded by name as it is, gives the same output within 1e-5 relative.
  const auto dir = asg::testing::make_temp_dir("temporal-conv-reference");
  ASSERT_TRUE(asg::testing::write_fixture("diffusers_blocks_reference.py", dir)) << "the Python reference environment failed";
  auto m = make_under_test<asg::TemporalModule>("temporal_conv", {{"groups", int64_t{8}}}, asg::TemporalContext{"test", 32, 5, 3, 4});
  asg::nn::load_named_tensors(*m, asg::nn::read_safetensors(dir / "temporal_conv.weights.safetensors").tensors, "temporal_conv reference");
  auto io = asg::nn::read_safetensors(dir / "temporal_conv.io.safetensors").tensors;
  torch::NoGradGuard no_grad;
  // diffusers takes [B*F, C, H, W] and num_frames; the plugin [B, C, F, H, W].
  auto x = io["x"].unflatten(0, {2, 5}).transpose(1, 2);
  EXPECT_TRUE(asg::testing::matches_reference(m->forward(x).transpose(1, 2).flatten(0, 1), io["output"]));
  std::filesystem::remove_all(dir);
}
