#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/backbone.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {

// A temporal module that records where it was inserted and shifts frames by one, so its use is visible.
struct ShiftFrames : asg::TemporalModule {
  torch::Tensor forward(const torch::Tensor& x) override { return torch::roll(x, 1, 2); }
};

asg::BackboneContext context(std::vector<asg::TemporalContext>* seen, bool shift = false) {
  asg::BackboneContext ctx;
  ctx.channels = 4;
  ctx.frames = 4;
  ctx.height = 8;
  ctx.width = 8;
  ctx.text_dim = 6;
  ctx.make_temporal = [seen, shift](const asg::TemporalContext& tc) -> std::shared_ptr<asg::TemporalModule> {
    seen->push_back(tc);
    if (shift) return std::make_shared<ShiftFrames>();
    struct Identity : asg::TemporalModule {
      torch::Tensor forward(const torch::Tensor& x) override { return x; }
    };
    return std::make_shared<Identity>();
  };
  return ctx;
}

asg::TextEmbedding text(int64_t b) {
  return asg::TextEmbedding{torch::randn({b, 3, 6}), torch::ones({b, 3}, torch::kBool), torch::randn({b, 6})};
}

}  // namespace

TEST(Unet3d, PlacesATemporalModuleAfterEveryResNetBlock) {
  std::vector<asg::TemporalContext> seen;
  auto net = make_under_test<asg::Backbone>("unet3d", {{"channels", std::vector<int64_t>{8, 16}}}, context(&seen));
  // 2 levels x 1 block down, 1 mid, 2 levels x 1 block up
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen[0].channels, 8);
  EXPECT_EQ(seen[0].height, 8);
  EXPECT_EQ(seen[1].channels, 16);
  EXPECT_EQ(seen[1].height, 4);
  EXPECT_EQ(seen[2].channels, 16);  // mid
  for (const auto& s : seen) EXPECT_EQ(s.frames, 4);
  int temporal_children = 0;
  for (const auto& m : net->named_modules())
    if (m.key().size() >= 9 && m.key().substr(m.key().size() - 9) == ".temporal") ++temporal_children;
  EXPECT_EQ(temporal_children, 5);
}

TEST(Unet3d, OutputHasInputShapeAndStartsAtZero) {
  torch::manual_seed(0);
  std::vector<asg::TemporalContext> seen;
  auto net = make_under_test<asg::Backbone>("unet3d", {{"channels", std::vector<int64_t>{8, 16}}}, context(&seen));
  auto x = torch::randn({2, 4, 4, 8, 8});
  auto out = net->forward(x, torch::tensor({10.f, 900.f}), text(2));
  EXPECT_EQ(out.sizes(), x.sizes());
  EXPECT_EQ(out.abs().max().item<double>(), 0.0);  // zero-initialised output conv
}

TEST(Unet3d, TrainsAndDependsOnTimestepTextAndTemporalModule) {
  torch::manual_seed(0);
  std::vector<asg::TemporalContext> seen;
  auto net = make_under_test<asg::Backbone>("unet3d", {{"channels", std::vector<int64_t>{8, 16}}}, context(&seen, true));
  torch::optim::Adam opt(net->parameters(), 1e-2);
  auto x = torch::randn({2, 4, 4, 8, 8});
  auto target = torch::randn({2, 4, 4, 8, 8});
  auto emb = text(2);
  auto t = torch::tensor({10.f, 500.f});
  double first = 0, last = 0;
  for (int i = 0; i < 30; ++i) {
    auto loss = torch::mse_loss(net->forward(x, t, emb), target);
    if (i == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, 0.8 * first);
  torch::NoGradGuard g;
  auto base = net->forward(x, t, emb);
  EXPECT_GT((net->forward(x, torch::tensor({11.f, 501.f}), emb) - base).abs().max().item<double>(), 1e-6);
  EXPECT_GT((net->forward(x, t, text(2)) - base).abs().max().item<double>(), 1e-6);
  // Changing one frame of the input changes other frames' output only through the temporal modules.
  auto poked = x.clone();
  poked.select(2, 0).add_(1.0);
  auto diff = (net->forward(poked, t, emb) - base).abs().sum({0, 1, 3, 4});
  EXPECT_GT(diff[1].item<double>(), 1e-6);
}

TEST(Unet3d, RejectsSizesItCannotDownsample) {
  std::vector<asg::TemporalContext> seen;
  auto ctx = context(&seen);
  ctx.height = 6;
  try {
    make_under_test<asg::Backbone>("unet3d", {{"channels", std::vector<int64_t>{8, 16, 32}}}, ctx);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("divisible by 4"), std::string::npos) << e.what();
  }
}

TEST(Unet3d, ModelscopeLayoutAddsSpatialAndTemporalTransformersAtTheAttentionLevels) {
  torch::manual_seed(0);
  std::vector<asg::TemporalContext> seen;
  const std::map<std::string, asg::ParamValue> params{{"channels", std::vector<int64_t>{8, 16}},
                                                      {"layout", std::string("modelscope")},
                                                      {"attention_from_level", int64_t{1}},
                                                      {"transformer_depth", int64_t{2}}};
  auto net = make_under_test<asg::Backbone>("unet3d", params, context(&seen));
  int spatial = 0, temporal = 0, cross = 0;
  for (const auto& m : net->named_modules("", false)) {
    const std::string& key = m.key();
    auto ends = [&](const std::string& s) { return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0; };
    spatial += ends(".spatial_transformer");
    temporal += ends(".temporal_transformer");
    cross += ends(".attention");
  }
  // Level 1 (down1_0, up1_0) and mid attend; level 0 does not. No compact cross-attention.
  EXPECT_EQ(spatial, 3);
  EXPECT_EQ(temporal, 3);
  EXPECT_EQ(cross, 0);
  EXPECT_EQ(seen.size(), 5u);  // the temporal module slot is still after every ResNet block
  // Identity at the start (zero output), then trainable; afterwards the temporal transformer alone mixes
  // frames (the temporal modules here are identities and the frame embedding is per frame).
  auto x = torch::randn({2, 4, 4, 8, 8});
  auto t = torch::tensor({10.f, 500.f});
  auto emb = text(2);
  EXPECT_EQ(net->forward(x, t, emb).abs().max().item<double>(), 0.0);
  torch::optim::Adam opt(net->parameters(), 1e-2);
  auto target = torch::randn({2, 4, 4, 8, 8});
  for (int i = 0; i < 10; ++i) {
    auto loss = torch::mse_loss(net->forward(x, t, emb), target);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  torch::NoGradGuard g;
  auto base = net->forward(x, t, emb);
  auto poked = x.clone();
  poked.select(2, 0).add_(1.0);
  auto diff = (net->forward(poked, t, emb) - base).abs().sum({0, 1, 3, 4});
  EXPECT_GT(diff[2].item<double>(), 1e-6);
  // Without the temporal transformer nothing but the (identity) temporal modules could mix frames.
  auto no_tt = params;
  no_tt["temporal_transformer"] = std::string("none");
  std::vector<asg::TemporalContext> seen2;
  auto frame_local = make_under_test<asg::Backbone>("unet3d", no_tt, context(&seen2));
  for (auto& p : frame_local->parameters()) p.normal_(0, 0.2);
  auto d2 = (frame_local->forward(poked, t, emb) - frame_local->forward(x, t, emb)).abs().sum({0, 1, 3, 4});
  EXPECT_GT(d2[0].item<double>(), 1e-6);
  EXPECT_EQ(d2[2].item<double>(), 0.0);
}

TEST(Unet3d, TakesConditionChannelsAndPredictsOnlyTheClipsChannels) {
  torch::manual_seed(0);
  std::vector<asg::TemporalContext> seen;
  auto ctx = context(&seen);
  ctx.condition_channels = 5;  // 4 condition channels + the mask
  auto net = make_under_test<asg::Backbone>("unet3d", {{"channels", std::vector<int64_t>{8, 16}}}, ctx);
  for (auto& p : net->parameters()) p.data().normal_(0, 0.2);
  torch::NoGradGuard g;
  auto x = torch::randn({2, 9, 4, 8, 8});
  auto out = net->forward(x, torch::tensor({10.f, 500.f}), text(2));
  EXPECT_EQ(out.sizes(), torch::IntArrayRef({2, 4, 4, 8, 8}));
  auto changed = x.clone();
  changed.narrow(1, 4, 5).normal_();
  EXPECT_GT((net->forward(changed, torch::tensor({10.f, 500.f}), text(2)) - out).abs().max().item<double>(), 1e-6);
}

TEST(Unet3d, VideoFactoryLayoutPutsSwapAttentionWhereTheTemporalTransformerWas) {
  torch::manual_seed(0);
  std::vector<asg::TemporalContext> seen;
  auto net = make_under_test<asg::Backbone>("unet3d",
                                            {{"channels", std::vector<int64_t>{8, 16}},
                                             {"layout", std::string("modelscope")},
                                             {"temporal_transformer", std::string("swap")},
                                             {"swap_window", int64_t{2}}},
                                            context(&seen));
  int swap = 0, temporal = 0;
  for (const auto& m : net->named_modules("", false)) {
    const std::string& key = m.key();
    auto ends = [&](const std::string& s) { return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0; };
    swap += ends(".swap_transformer");
    temporal += ends(".temporal_transformer");
  }
  EXPECT_EQ(swap, 3);
  EXPECT_EQ(temporal, 0);
  // Trained off its zero-initialised output projections, the swap attention alone mixes frames.
  for (auto& p : net->parameters()) p.data().normal_(0, 0.2);
  torch::NoGradGuard g;
  auto x = torch::randn({1, 4, 4, 8, 8});
  auto t = torch::tensor({10.f});
  auto emb = text(1);
  auto poked = x.clone();
  poked.select(2, 0).add_(1.0);
  auto diff = (net->forward(poked, t, emb) - net->forward(x, t, emb)).abs().sum({0, 1, 3, 4});
  EXPECT_GT(diff[3].item<double>(), 1e-6);
}
