#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "plugin_under_test.h"
#include "sprite_geometry.h"

using asg::testing::make_under_test;
namespace syn = asg::synthetic;

namespace {

asg::MetricContext synthetic_context() {
  asg::MetricContext ctx;
  ctx.data = asg::DatasetInfo{8, 16, 16, 4.0, {"colour", "shape", "direction"}};
  ctx.dataset_name = "synthetic_stickers";
  return ctx;
}

// A clip [T, 4, H, W] of one sprite moving `step` pixels per frame along (dx, dy).
torch::Tensor clip(const std::string& shape, const std::string& colour, double dx, double dy, double radius = 4.5) {
  auto c = torch::zeros({8, 4, 16, 16});
  const auto* col = syn::find_colour(colour);
  for (int t = 0; t < 8; ++t) {
    double cx = 8 + dx * (t - 3.5), cy = 8 + dy * (t - 3.5);
    auto mask = syn::render_mask(*syn::parse_shape(shape), 16, 16, cx, cy, radius);
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x)
        if (mask[y * 16 + x]) {
          for (int k = 0; k < 3; ++k) c[t][k][y][x] = col->rgb[k] / 255.0f;
          c[t][3][y][x] = 1;
        }
  }
  return c;
}

asg::Sticker reference(const std::string& colour, const std::string& shape, const std::string& dir) {
  asg::Sticker s;
  s.id = "ref";
  s.caption = "a " + colour + " " + shape;
  s.labels = {{"colour", colour}, {"shape", shape}, {"direction", dir}};
  return s;
}

std::map<std::string, double> run(const torch::Tensor& clips, const std::vector<asg::Sticker>& refs) {
  auto m = make_under_test<asg::Metric>("caption_accuracy", {}, synthetic_context());
  m->update(clips, refs);
  std::map<std::string, double> out;
  for (const auto& v : m->compute()) out[v.key] = v.value;
  return out;
}

}  // namespace

TEST(CaptionAccuracy, ClipsThatShowTheirCaptionScoreOne) {
  std::vector<torch::Tensor> clips;
  std::vector<asg::Sticker> refs;
  const std::vector<std::tuple<std::string, double, double>> dirs = {{"right", 0.8, 0}, {"left", -0.8, 0}, {"down", 0, 0.8}, {"up", 0, -0.8}};
  int i = 0;
  for (const auto& shape : syn::shape_names())
    for (const auto& [dir, dx, dy] : dirs) {
      const auto& colour = syn::palette()[i++ % 6].name;
      clips.push_back(clip(shape, colour, dx, dy));
      refs.push_back(reference(colour, shape, dir));
    }
  auto r = run(torch::stack(clips), refs);
  EXPECT_DOUBLE_EQ(r["caption_accuracy.colour"], 1.0);
  EXPECT_DOUBLE_EQ(r["caption_accuracy.direction"], 1.0);
  EXPECT_DOUBLE_EQ(r["caption_accuracy.shape"], 1.0);
  EXPECT_DOUBLE_EQ(r["caption_accuracy.all"], 1.0);
  EXPECT_DOUBLE_EQ(r["caption_accuracy.clean"], 1.0);
  EXPECT_DOUBLE_EQ(r["caption_accuracy"], 1.0);
}

TEST(CaptionAccuracy, EachAttributeIsJudgedOnItsOwn) {
  auto c = clip("star", "red", 0.8, 0).unsqueeze(0);
  auto wrong_colour = run(c, {reference("blue", "star", "right")});
  EXPECT_EQ(wrong_colour["caption_accuracy.colour"], 0.0);
  EXPECT_EQ(wrong_colour["caption_accuracy.shape"], 1.0);
  EXPECT_EQ(wrong_colour["caption_accuracy.direction"], 1.0);
  EXPECT_NEAR(wrong_colour["caption_accuracy"], 2.0 / 3, 1e-12);
  EXPECT_EQ(wrong_colour["caption_accuracy.all"], 0.0);
  auto wrong_dir = run(c, {reference("red", "star", "left")});
  EXPECT_EQ(wrong_dir["caption_accuracy.direction"], 0.0);
  auto wrong_shape = run(c, {reference("red", "square", "right")});
  EXPECT_EQ(wrong_shape["caption_accuracy.shape"], 0.0);
}

TEST(CaptionAccuracy, StillSpritesAndEmptyOrNoisyFramesFail) {
  auto still = run(clip("circle", "green", 0, 0).unsqueeze(0), {reference("green", "circle", "up")});
  EXPECT_EQ(still["caption_accuracy.direction"], 0.0);  // did not move: "none"
  auto empty = run(torch::zeros({1, 8, 4, 16, 16}), {reference("green", "circle", "up")});
  EXPECT_EQ(empty["caption_accuracy"], 0.0);
  EXPECT_EQ(empty["caption_accuracy.clean"], 0.0);
  torch::manual_seed(0);
  auto noisy = clip("circle", "green", 0.8, 0);
  noisy.select(1, 3).copy_(torch::rand({8, 16, 16}));
  EXPECT_EQ(run(noisy.unsqueeze(0), {reference("green", "circle", "right")})["caption_accuracy.clean"], 0.0);
}

TEST(CaptionAccuracy, RefusesDatasetsWithoutTheLabels) {
  asg::MetricContext ctx;
  ctx.data.label_keys = {"colour"};
  ctx.dataset_name = "my_gifs";
  try {
    make_under_test<asg::Metric>("caption_accuracy", {}, ctx);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(), "[metrics] caption_accuracy needs dataset labels colour, shape and direction; dataset 'my_gifs' provides: colour");
  }
}
