#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/kinds/metric.h"
#include "asg/nn/safetensors.h"
#include "dover_views.h"
#include "extractor.h"
#include "extractor_fixtures.h"
#include "metric_driver.h"
#include "plugin_under_test.h"
#include "test_clips.h"
#include "test_paths.h"

namespace dover = asg::metrics::dover;
using asg::testing::make_under_test;

namespace {

// The synthetic videos of tests/fixtures/dover (README there): v[f, y, x, ch] = (a f + b y + c x + d ch + e ((x y) % m)) % 256.
struct VideoRecipe {
  std::string name;
  int64_t n, h, w, a, b, c, d, e, m;
};
const VideoRecipe kVideoA{"A", 12, 40, 56, 11, 3, 5, 85, 7, 13}, kVideoB{"B", 40, 300, 260, 13, 2, 3, 85, 5, 11};

torch::Tensor make_video(const VideoRecipe& r) {
  auto f = torch::arange(r.n, torch::kLong).view({-1, 1, 1, 1}), y = torch::arange(r.h, torch::kLong).view({1, -1, 1, 1});
  auto x = torch::arange(r.w, torch::kLong).view({1, 1, -1, 1}), ch = torch::arange(3, torch::kLong).view({1, 1, 1, -1});
  return (r.a * f + r.b * y + r.c * x + r.d * ch + r.e * (x * y).remainder(r.m)).remainder(256).to(torch::kUInt8).contiguous();
}

std::map<std::string, torch::Tensor> vectors(const std::string& file) {
  return asg::nn::read_safetensors(asg::testing::source_dir() / "tests/fixtures/dover" / file).tensors;
}

// 8-bit frames: identical but for at most `few` values one step apart. On this machine they are identical; the
// aesthetic resize is allowed a few because torch's 3-channel bilinear kernel rounds differently with one
// thread than with several (the reference's own output moves the same way).
void expect_same_pixels(const torch::Tensor& ours, const torch::Tensor& reference, int64_t few) {
  ASSERT_EQ(ours.sizes(), reference.sizes());
  auto diff = (ours.to(torch::kInt) - reference.to(torch::kInt)).abs();
  EXPECT_LE(diff.max().item<int>(), 1);
  EXPECT_LE(diff.gt(0).sum().item<int64_t>(), few);
}

// Per (clip, channel, frame) sums of the normalised view; one 8-bit step of one pixel moves a sum by about 0.017.
void expect_close_sums(const torch::Tensor& view, const torch::Tensor& reference_sums, double tolerance) {
  auto sums = view.to(torch::kFloat64).sum({-1, -2});
  ASSERT_EQ(sums.sizes(), reference_sums.sizes());
  EXPECT_LE((sums - reference_sums).abs().max().item<double>(), tolerance);
}

std::map<std::string, asg::ParamValue> params(const std::string& variant = "") {
  const auto file = asg::testing::extractor_fixture("dover", variant);
  return {{"model", file.string()}, {"sha256", asg::sha256_file(file)}};
}

}  // namespace

TEST(DoverViews, TakeTheReferencesFramesAndPixels) {
  for (const auto& recipe : {kVideoA, kVideoB}) {
    SCOPED_TRACE("video " + recipe.name);
    auto ref = vectors("video" + recipe.name + ".safetensors");
    const auto video = make_video(recipe);
    at::Generator unused = at::detail::createCPUGenerator(0);
    const auto technical_indices = dover::technical_frame_indices(recipe.n, unused);
    const auto aesthetic_indices = dover::aesthetic_frame_indices(recipe.n, unused);
    EXPECT_TRUE(torch::equal(technical_indices, ref["technical.frame_inds"].to(torch::kLong)));
    EXPECT_TRUE(torch::equal(aesthetic_indices, ref["aesthetic.frame_inds"].to(torch::kLong)));

    // torch.manual_seed(0) before the reference's view decomposition: the same cell offsets from seed 0.
    at::Generator generator = at::detail::createCPUGenerator(0);
    const auto technical = dover::technical_view_pixels(video, technical_indices, generator);
    expect_same_pixels(technical.select(1, 0).to(torch::kUInt8), ref["technical.clip0_t0_u8"], 0);
    expect_same_pixels(technical.select(1, 64).to(torch::kUInt8), ref["technical.clip2_t0_u8"], 0);
    for (const bool antialias : {false, true}) {
      SCOPED_TRACE(antialias ? "antialiased" : "not antialiased");
      const std::string prefix = antialias ? "aesthetic_aa." : "aesthetic.";
      const auto aesthetic = dover::aesthetic_view_pixels(video, aesthetic_indices, antialias);
      expect_same_pixels(aesthetic.select(1, 0), ref[prefix + "t0_u8"], 30);
      at::Generator again = at::detail::createCPUGenerator(0);
      const auto views = dover::make_views(video, again, antialias);
      EXPECT_EQ(views.aesthetic.sizes(), torch::IntArrayRef({1, 3, 32, 224, 224}));
      expect_close_sums(views.aesthetic, ref[prefix + "norm_sums"], 0.6);
      if (!antialias) {
        EXPECT_EQ(views.technical.sizes(), torch::IntArrayRef({3, 3, 32, 224, 224}));
        expect_close_sums(views.technical, ref["technical.norm_sums"], 1e-6);
      }
    }
  }
}

TEST(DoverViews, FuseTheBranchesAsTheReference) {
  auto ref = vectors("fusion.safetensors");
  for (int64_t i = 0; i < ref["fused"].size(0); ++i)
    EXPECT_NEAR(dover::fuse(ref["technical_raw"][i].item<double>(), ref["aesthetic_raw"][i].item<double>()), ref["fused"][i].item<double>(), 1e-12);
}

TEST(DoverViews, EnlargeOnlyFramesUnder32Pixels) {
  auto small = torch::randint(0, 256, {4, 16, 24, 3}, torch::kUInt8);
  EXPECT_EQ(dover::enlarge_small_frames(small).sizes(), torch::IntArrayRef({4, 32, 48, 3}));
  auto large = torch::randint(0, 256, {4, 32, 40, 3}, torch::kUInt8);
  EXPECT_TRUE(torch::equal(dover::enlarge_small_frames(large), large));
}

TEST(Dover, ScoresEachStickerWithTheModelOnItsViewsAndFusesTheBranches) {
  torch::manual_seed(1);
  auto clips = torch::rand({2, 8, 4, 48, 48});
  clips.narrow(2, 3, 1).fill_(1);  // opaque: the composite is the colour itself
  auto metric = make_under_test<asg::Metric>("dover", params(), asg::testing::clip_context(8, 48));
  auto values = asg::testing::metric_results(*metric, clips, asg::testing::as_references(clips));

  // The same by hand: the model on each sticker's views, each branch's map averaged, fused, averaged.
  auto model = torch::jit::load(std::get<std::string>(params()["model"]));
  double fused = 0, technical = 0, aesthetic = 0;
  for (int64_t i = 0; i < 2; ++i) {
    auto video = asg::metrics::protocol_video(clips[i], 8, 8, 1, {255, 255, 255}).permute({1, 2, 3, 0}).to(torch::kUInt8).contiguous();
    at::Generator generator = at::detail::createCPUGenerator(0);
    auto views = dover::make_views(video, generator);
    auto out = model.forward({views.technical, views.aesthetic}).toTuple()->elements();
    const double t = out[0].toTensor().to(torch::kFloat64).mean().item<double>();
    const double a = out[1].toTensor().to(torch::kFloat64).mean().item<double>();
    technical += t / 2;
    aesthetic += a / 2;
    fused += dover::fuse(t, a) / 2;
  }
  EXPECT_NEAR(values["dover"], fused, 1e-12);
  EXPECT_NEAR(values["dover.technical"], technical, 1e-12);
  EXPECT_NEAR(values["dover.aesthetic"], aesthetic, 1e-12);
  EXPECT_GT(values["dover"], 0);
  EXPECT_LT(values["dover"], 1);
  // Other stickers score otherwise.
  auto other = make_under_test<asg::Metric>("dover", params(), asg::testing::clip_context(8, 48));
  auto darker = asg::testing::metric_results(*other, clips * 0.5, asg::testing::as_references(clips));
  EXPECT_NE(darker["dover"], values["dover"]);
}

TEST(Dover, RefusesAModelWithoutItsInterfaceOrWithAnotherHash) {
  auto context = asg::testing::clip_context(8, 48);
  const auto wrong = asg::testing::config_error_of<asg::Metric>("dover", params("wrong-interface"), context);
  EXPECT_NE(wrong.find("forward takes 1 arguments; expected 2"), std::string::npos) << wrong;
  auto p = params();
  p["sha256"] = std::string(64, 'a');
  const auto hash = asg::testing::config_error_of<asg::Metric>("dover", p, context);
  EXPECT_NE(hash.find(std::string(64, 'a')), std::string::npos) << hash;
}
