#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/kinds/temporal.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "plugin_under_test.h"
#include "reference_match.h"
#include "test_paths.h"

using asg::testing::make_under_test;

namespace {
std::shared_ptr<asg::TemporalModule> make(const std::map<std::string, asg::ParamValue>& p, int64_t channels = 32,
                                          int64_t frames = 8, int64_t h = 4, int64_t w = 4) {
  return make_under_test<asg::TemporalModule>("sti", p, asg::TemporalContext{"mid", channels, frames, h, w});
}
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.normal_(0, 0.2);
}

// One configuration of the released layer: the fixture's variant and sizes, and the plugin parameters that
// express the same class.
struct ReleasedConfig {
  std::string variant;
  int64_t channels, frames, batch, height, width;
  std::map<std::string, asg::ParamValue> params;
};

const std::map<std::string, asg::ParamValue> kThreeWeight = {{"detail", std::string("temporal_conv")}, {"detail_layers", int64_t{4}},
                                                            {"detail_frames", std::string("each")}, {"fusion", std::string("three_weight")},
                                                            {"norm_after_fusion", false}};
const std::map<std::string, asg::ParamValue> kFullResolution = {
    {"downsample", false},       {"head_dim", int64_t{16}},         {"attention_over", std::string("batch")},
    {"detail", std::string("temporal_conv")}, {"detail_layers", int64_t{4}}, {"detail_frames", std::string("each")},
    {"norm_after_fusion", false}};

void expect_matches_released(const ReleasedConfig& c) {
  SCOPED_TRACE(c.variant + " C=" + std::to_string(c.channels) + " F=" + std::to_string(c.frames) + " B=" +
               std::to_string(c.batch) + " " + std::to_string(c.height) + "x" + std::to_string(c.width));
  const auto dir = asg::testing::make_temp_dir("sti-reference");
  ASSERT_TRUE(asg::testing::write_fixture(
      "sti_reference.py", dir,
      fmt::format("--variant {} --channels {} --frames {} --batch {} --size {} {}", c.variant, c.channels, c.frames, c.batch,
                  c.height, c.width)))
      << "the Python reference environment (.venv) could not build the released layer";
  auto m = make(c.params, c.channels, c.frames, c.height, c.width);
  // The released names are the plugin's names: the reference's state_dict loads as it is, every key used.
  asg::nn::load_named_tensors(*m, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "reference");
  auto io = asg::nn::read_safetensors(dir / "io.safetensors").tensors;
  // The released layer takes [B*F, C, H, W]; temporal modules take [B, C, F, H, W].
  auto x = io["input"].unflatten(0, {c.batch, c.frames}).transpose(1, 2);
  torch::NoGradGuard no_grad;
  auto y = m->forward(x).transpose(1, 2).flatten(0, 1);
  EXPECT_TRUE(asg::testing::matches_reference(y, io["output"], 1e-5));
  std::filesystem::remove_all(dir);
}
}  // namespace

TEST(Sti, MatchesTheReleasedDownsampleLayer) {
  // The defaults are SpatioTemporalInteractionLayerDownSample; two sizes, and an odd height (pooled with floor,
  // upsampled back to the full size, as released).
  expect_matches_released({"downsample", 64, 8, 2, 8, 8, {}});
  expect_matches_released({"downsample", 32, 4, 3, 6, 4, {}});
  expect_matches_released({"downsample", 32, 8, 2, 5, 6, {}});
}

TEST(Sti, MatchesTheReleasedThreeWeightLayer) {
  expect_matches_released({"three_weight", 64, 8, 2, 8, 8, kThreeWeight});
  expect_matches_released({"three_weight", 32, 4, 3, 6, 4, kThreeWeight});
}

TEST(Sti, MatchesTheReleasedFullResolutionLayer) {
  expect_matches_released({"full", 64, 8, 2, 4, 4, kFullResolution});
  expect_matches_released({"full", 32, 4, 3, 6, 4, kFullResolution});
}

TEST(Sti, MatchesTheReleasedCommentedOutMlpFusion) {
  expect_matches_released({"mlp", 64, 8, 2, 8, 8, {{"fusion", std::string("mlp")}}});
  expect_matches_released({"mlp", 32, 4, 3, 6, 4, {{"fusion", std::string("mlp")}}});
}

TEST(Sti, RefusesWeightsOfAnotherConfigurationNamingEveryKey) {
  const auto dir = asg::testing::make_temp_dir("sti-refusal");
  ASSERT_TRUE(asg::testing::write_fixture("sti_reference.py", dir, "--variant three_weight --channels 32 --frames 8"));
  auto m = make({}, 32, 8);  // the downsample class: frame ResNets and a norm, no conv_layer, no w3
  auto before = m->named_parameters()["w2"].clone();
  try {
    asg::nn::load_named_tensors(*m, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "three_weight.safetensors");
    FAIL() << "expected a config error";
  } catch (const asg::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_NE(what.find("three_weight.safetensors: the weights do not fit this model (nothing was loaded)"), std::string::npos) << what;
    EXPECT_NE(what.find("missing (18):\n    'conv_layers.0.conv1.bias'\n"), std::string::npos) << what;
    EXPECT_NE(what.find("\n    'norm.weight'\n"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected (17):\n    'conv_layer.conv1.0.bias'\n"), std::string::npos) << what;
    EXPECT_NE(what.find("\n    'w3'"), std::string::npos) << what;
  }
  EXPECT_TRUE(torch::equal(m->named_parameters()["w2"], before)) << "a refused file must leave the module as it was";
  std::filesystem::remove_all(dir);
}

TEST(Sti, ReleasedDefaultsHaveTheReleasedStructure) {
  torch::manual_seed(0);
  auto m = make({}, 16);
  auto params = m->named_parameters();
  // diffusers Attention(C, heads = 8, dim_head = 32): q/k/v without bias, output projection with.
  EXPECT_EQ(params["transformer_blocks.to_q.weight"].sizes(), (std::vector<int64_t>{256, 16}));
  EXPECT_FALSE(params.contains("transformer_blocks.to_q.bias"));
  EXPECT_EQ(params["transformer_blocks.to_out.0.weight"].sizes(), (std::vector<int64_t>{16, 256}));
  // Detail: 2 ResnetBlock2D(8 -> 8) over frames-as-channels.
  EXPECT_EQ(params["conv_layers.0.conv1.weight"].sizes(), (std::vector<int64_t>{8, 8, 3, 3}));
  EXPECT_TRUE(params.contains("conv_layers.1.conv2.weight"));
  EXPECT_FALSE(params.contains("conv_layers.2.conv1.weight"));
  // Fusion w1 = 0, w2 = 1; then GroupNorm, so not the identity.
  EXPECT_EQ(params["w1"].item<float>(), 0.0f);
  EXPECT_EQ(params["w2"].item<float>(), 1.0f);
  EXPECT_FALSE(params.contains("w3"));
  EXPECT_TRUE(params.contains("norm.weight"));
  EXPECT_FALSE(m->identity_at_init());
}

TEST(Sti, IsTheIdentityAtInitExactlyWhenItSaysSo) {
  auto x = torch::randn({2, 16, 8, 4, 4});
  struct Case {
    std::map<std::string, asg::ParamValue> params;
    bool identity;
  };
  const std::vector<Case> cases = {
      {{{"norm_after_fusion", false}, {"detail", std::string("temporal_conv")}}, true},
      {{{"norm_after_fusion", false}, {"detail_zero_init", true}}, true},
      {{{"norm_after_fusion", false}}, false},  // the frame ResNets change x
      {kThreeWeight, true},                     // w3 = 1 passes x through, w1 = w2 = 0
      {{{"norm_after_fusion", false}, {"detail_zero_init", true}, {"fusion", std::string("mlp")}}, false},
      {{}, false},
  };
  for (const auto& c : cases) {
    torch::manual_seed(0);
    auto m = make(c.params, 16);
    EXPECT_EQ(m->identity_at_init(), c.identity);
    EXPECT_EQ(torch::allclose(m->forward(x), x, 1e-6, 1e-6), c.identity);
  }
}

TEST(Sti, SemanticBranchConnectsDistantFramesAndPositions) {
  // With the detail branch off the path (w2 = 0) and the semantic branch on (w1 = 1), a change at
  // frame 0, top-left reaches frame 7, bottom-right: joint space-time attention.
  torch::manual_seed(0);
  auto m = make({{"norm_after_fusion", false}, {"detail", std::string("temporal_conv")}, {"detail_layers", int64_t{1}}}, 16);
  randomise(*m);
  {
    torch::NoGradGuard g;
    auto params = m->named_parameters();
    params["w1"].fill_(1);
    params["w2"].fill_(0);
  }
  auto x = torch::randn({1, 16, 8, 4, 4}, torch::requires_grad());
  m->forward(x).select(2, 7)[0].select(1, 3).select(1, 3).sum().backward();
  EXPECT_GT(x.grad()[0].select(1, 0)[0][0].abs().sum().item<double>(), 0.0);
}

TEST(Sti, AttentionOverTheClipKeepsClipsApartAndOverTheBatchDoesNot) {
  // The released full-resolution class attends over every token of the batch, so one sample's output
  // depends on the others; per clip it does not.
  for (const std::string over : {"clip", "batch"}) {
    torch::manual_seed(0);
    auto m = make({{"attention_over", over}, {"downsample", false}}, 16);
    randomise(*m);
    auto x = torch::randn({2, 16, 8, 4, 4}, torch::requires_grad());
    m->forward(x)[0].sum().backward();
    const double reach = x.grad()[1].abs().sum().item<double>();
    if (over == "clip") EXPECT_EQ(reach, 0.0);
    else EXPECT_GT(reach, 0.0);
  }
}

TEST(Sti, SdpaAttentionMatchesNaiveInForwardAndBackward) {
  // In float64 the two agree to rounding; in float32 the q/k gradients may differ by a few 1e-4 relative,
  // from the cancellation in dS = P o (dP - rowsum(dO o O)) that the two compute in different orders.
  for (auto dtype : {torch::kFloat64, torch::kFloat32}) {
    auto run = [dtype](const std::string& backend) {
      torch::manual_seed(0);
      auto m = make({{"attention_backend", backend}, {"downsample", false}}, 16);
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
