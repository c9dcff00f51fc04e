#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/kinds/backbone.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {

// The `none` temporal module: frames stay independent unless the backbone mixes them itself.
struct Identity final : asg::TemporalModule {
  torch::Tensor forward(const torch::Tensor& x) override { return x; }
};

asg::BackboneContext context(std::vector<int64_t>* indices = nullptr) {
  asg::BackboneContext ctx;
  ctx.channels = 4;
  ctx.frames = 4;
  ctx.height = ctx.width = 8;
  ctx.text_dim = 16;
  ctx.make_temporal = [indices](const asg::TemporalContext& tc) {
    if (indices) indices->push_back(tc.index);
    EXPECT_EQ(tc.channels, 32);
    EXPECT_EQ(tc.height, 4);  // the token grid: 8 / patch 2
    return std::make_shared<Identity>();
  };
  return ctx;
}

std::map<std::string, asg::ParamValue> small(bool latte_blocks = false) {
  return {{"width", int64_t{32}}, {"depth", int64_t{2}}, {"heads", int64_t{4}}, {"latte_temporal_blocks", latte_blocks}};
}

asg::TextEmbedding caption(int64_t batch, float value) {
  return {torch::full({batch, 3, 16}, value), torch::ones({batch, 3}, torch::kBool), torch::full({batch, 16}, value)};
}

void perturb(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (auto& p : m.parameters()) p.add_(torch::randn_like(p) * 0.1);
}

TEST(Dit, StartsAtZeroThenDependsOnTimestepAndCaption) {
  std::vector<int64_t> indices;
  torch::manual_seed(0);
  auto net = make_under_test<asg::Backbone>("dit", small(), context(&indices));
  EXPECT_EQ(indices, (std::vector<int64_t>{0, 1}));  // one temporal module per block, numbered
  auto x = torch::randn({2, 4, 4, 8, 8});
  auto t = torch::tensor({10.0f, 700.0f});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(net->forward(x, t, caption(2, 0.5f)), torch::zeros_like(x)));  // adaLN-Zero output layer
  perturb(*net);
  auto y = net->forward(x, t, caption(2, 0.5f));
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_FALSE(torch::allclose(y, net->forward(x, torch::tensor({500.0f, 700.0f}), caption(2, 0.5f))));
  EXPECT_FALSE(torch::allclose(y, net->forward(x, t, caption(2, -0.5f))));
}

TEST(Dit, LatteTemporalBlocksMixFramesOtherwiseTheTemporalSlotDoes) {
  // With an identity temporal module, frames are independent unless Latte's temporal blocks are on.
  for (bool latte : {false, true}) {
    torch::manual_seed(0);
    auto net = make_under_test<asg::Backbone>("dit", small(latte), context());
    perturb(*net);
    auto x = torch::randn({1, 4, 4, 8, 8});
    auto changed = x.clone();
    changed.select(2, 0).add_(1.0);  // frame 0 only
    torch::NoGradGuard no_grad;
    auto t = torch::tensor({300.0f});
    const bool last_frame_moved = !torch::allclose(net->forward(x, t, caption(1, 0.2f)).select(2, 3),
                                                   net->forward(changed, t, caption(1, 0.2f)).select(2, 3));
    EXPECT_EQ(last_frame_moved, latte);
  }
}

TEST(Dit, RefusesAPatchOrHeadsThatDoNotFit) {
  auto error_of = [](std::map<std::string, asg::ParamValue> p) {
    try {
      make_under_test<asg::Backbone>("dit", p, context());
    } catch (const asg::Error& e) {
      EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto p = small();
  p["patch"] = int64_t{3};
  EXPECT_EQ(error_of(p), "patch = 3 must divide the clip's height and width, which are 8x8 (valid: a common divisor, e.g. 8)");
  p = small();
  p["heads"] = int64_t{5};
  EXPECT_EQ(error_of(p), "heads = 5 must divide width = 32 (valid: a divisor of width)");
}

}  // namespace
