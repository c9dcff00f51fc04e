#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "metric_driver.h"
#include "plugin_under_test.h"
#include "sprite_vocabulary.h"

using asg::testing::make_under_test;
namespace syn = asg::synthetic;

namespace {

asg::MetricContext synthetic_context() {
  asg::MetricContext ctx;
  ctx.data = asg::DatasetInfo{8, 16, 16, 4.0, {"colour", "shape", "direction"}, {"sprite-vocabulary", "1.0.0"}};
  ctx.dataset_name = "synthetic_stickers";
  return ctx;
}

// A clip [T, 4, H, W] drawn as synthetic_stickers draws one: a 7 px sprite translated by whole pixels,
// holding each position `hold` frames and jumping `jump` px along (dx, dy) (unit steps; 0, 0 = still).
torch::Tensor clip(const std::string& shape, const std::string& colour, int dx, int dy, int jump = 2, int hold = 2) {
  const int d = 7;
  auto c = torch::zeros({8, 4, 16, 16});
  const auto* col = syn::find_colour(colour);
  auto sprite = syn::render_mask(*syn::parse_shape(shape), d, d, d / 2.0, d / 2.0, d / 2.0);
  for (int t = 0; t < 8; ++t) {
    int k = t / hold;
    int ox = 4 + dx * (k * jump - 3), oy = 4 + dy * (k * jump - 3);
    for (int y = 0; y < d; ++y)
      for (int x = 0; x < d; ++x)
        if (sprite[y * d + x]) {
          for (int i = 0; i < 3; ++i) c[t][i][oy + y][ox + x] = col->rgb[i] / 255.0f;
          c[t][3][oy + y][ox + x] = 1;
        }
  }
  return c;
}

const std::vector<std::tuple<std::string, int, int>> kDirections = {{"right", 1, 0}, {"left", -1, 0}, {"down", 0, 1}, {"up", 0, -1}};

// The reference sticker of a caption: labels, and the frames of the clip that shows it.
asg::Sticker reference(const std::string& colour, const std::string& shape, const std::string& dir) {
  asg::Sticker s;
  s.id = "ref";
  s.caption = "a " + colour + " " + shape;
  s.labels = {{"colour", colour}, {"shape", shape}, {"direction", dir}};
  for (const auto& [name, dx, dy] : kDirections)
    if (name == dir) s.frames = clip(shape, colour, dx, dy);
  return s;
}

std::map<std::string, double> run(const torch::Tensor& clips, const std::vector<asg::Sticker>& refs) {
  auto m = make_under_test<asg::Metric>("caption_accuracy", {}, synthetic_context());
  return asg::testing::metric_results(*m, clips, refs);
}

std::map<std::string, double> run_one(const torch::Tensor& c, const std::string& colour, const std::string& shape,
                                      const std::string& dir) {
  return run(c.unsqueeze(0), {reference(colour, shape, dir)});
}

const std::vector<std::string> kAllKeys = {"", ".colour", ".shape", ".direction", ".path", ".identity", ".all", ".motion", ".clean"};

}  // namespace

TEST(CaptionAccuracy, ClipsThatShowTheirCaptionScoreOneOnEveryKey) {
  std::vector<torch::Tensor> clips;
  std::vector<asg::Sticker> refs;
  int i = 0;
  for (const auto& shape : syn::shape_names())
    for (const auto& [dir, dx, dy] : kDirections) {
      const auto& colour = syn::palette()[i++ % 6].name;
      clips.push_back(clip(shape, colour, dx, dy, 2 + i % 2, 2 + i % 2));
      refs.push_back(reference(colour, shape, dir));
    }
  auto r = run(torch::stack(clips), refs);
  for (const auto& key : kAllKeys) EXPECT_DOUBLE_EQ(r["caption_accuracy" + key], 1.0) << key;
}

TEST(CaptionAccuracy, EachAttributeIsJudgedOnItsOwn) {
  auto c = clip("star", "red", 1, 0);
  auto wrong_colour = run_one(c, "blue", "star", "right");
  EXPECT_EQ(wrong_colour["caption_accuracy.colour"], 0.0);
  EXPECT_EQ(wrong_colour["caption_accuracy.shape"], 1.0);
  EXPECT_EQ(wrong_colour["caption_accuracy.direction"], 1.0);
  EXPECT_EQ(wrong_colour["caption_accuracy.path"], 1.0);
  EXPECT_EQ(wrong_colour["caption_accuracy.identity"], 1.0);
  EXPECT_NEAR(wrong_colour["caption_accuracy"], 4.0 / 5, 1e-12);
  EXPECT_EQ(wrong_colour["caption_accuracy.all"], 0.0);
  auto wrong_dir = run_one(c, "red", "star", "left");
  EXPECT_EQ(wrong_dir["caption_accuracy.direction"], 0.0);
  EXPECT_EQ(wrong_dir["caption_accuracy.path"], 0.0);
  EXPECT_EQ(run_one(c, "red", "square", "right")["caption_accuracy.shape"], 0.0);
}

TEST(CaptionAccuracy, AFrozenClipHasNoMotionNoDirectionAndNoPath) {
  auto r = run_one(clip("circle", "green", 0, 0), "green", "circle", "up");
  EXPECT_EQ(r["caption_accuracy.motion"], 0.0);
  EXPECT_EQ(r["caption_accuracy.direction"], 0.0);  // "none"
  EXPECT_EQ(r["caption_accuracy.path"], 0.0);
  EXPECT_EQ(r["caption_accuracy.identity"], 1.0);  // it is one sprite, just not moving
  EXPECT_EQ(r["caption_accuracy.colour"], 1.0);
}

TEST(CaptionAccuracy, AShuffledClipMovesButHasNoPath) {
  // The frames of a correct clip in an order that is still right-ish on average (the regression slope
  // says "right") but steps back: only the path check sees it.
  auto c = clip("square", "blue", 1, 0, 3, 2);
  auto shuffled = torch::stack({c[0], c[2], c[1], c[3], c[4], c[6], c[5], c[7]});
  auto r = run_one(shuffled, "blue", "square", "right");
  EXPECT_EQ(r["caption_accuracy.direction"], 1.0);
  EXPECT_EQ(r["caption_accuracy.path"], 0.0);
  EXPECT_EQ(r["caption_accuracy.motion"], 1.0);
  EXPECT_EQ(r["caption_accuracy.identity"], 1.0);
}

TEST(CaptionAccuracy, UnevenJumpsAreNoPath) {
  auto c = clip("square", "blue", 1, 0, 2, 2);
  // Move the last position 2 px further: jumps 2, 2, 4.
  auto uneven = c.clone();
  uneven.narrow(0, 6, 2).zero_();
  uneven.narrow(0, 6, 2).narrow(3, 2, 14).copy_(c.narrow(0, 6, 2).narrow(3, 0, 14));
  EXPECT_EQ(run_one(uneven, "blue", "square", "right")["caption_accuracy.path"], 0.0);
}

TEST(CaptionAccuracy, NoiseAndSubJumpDriftAreNoPath) {
  // Speckle noise: a "sprite" in every frame whose centroid jitters around the centre.
  torch::manual_seed(1);
  auto noise = torch::rand({8, 4, 16, 16});
  EXPECT_EQ(run_one(noise, "red", "square", "right")["caption_accuracy.path"], 0.0);
  // A sprite that creeps one pixel per frame moves the right way but never jumps.
  auto creep = torch::zeros({8, 4, 16, 16});
  auto c = clip("square", "red", 1, 0, 0, 8);  // the first position, held
  for (int t = 0; t < 8; ++t) creep[t].narrow(2, t, 16 - t).copy_(c[t].narrow(2, 0, 16 - t));
  auto r = run_one(creep, "red", "square", "right");
  EXPECT_EQ(r["caption_accuracy.direction"], 1.0);
  EXPECT_EQ(r["caption_accuracy.path"], 0.0);
}

TEST(CaptionAccuracy, ASpriteThatChangesColourOrShapeMidwayFailsIdentity) {
  auto recoloured = clip("triangle", "yellow", 0, 1);
  recoloured.narrow(0, 4, 4).copy_(clip("triangle", "purple", 0, 1).narrow(0, 4, 4));
  auto r = run_one(recoloured, "yellow", "triangle", "down");
  EXPECT_EQ(r["caption_accuracy.identity"], 0.0);
  EXPECT_EQ(r["caption_accuracy.path"], 1.0);  // it still travels one path

  auto reshaped = clip("triangle", "yellow", 0, 1);
  reshaped.narrow(0, 4, 4).copy_(clip("circle", "yellow", 0, 1).narrow(0, 4, 4));
  EXPECT_EQ(run_one(reshaped, "yellow", "triangle", "down")["caption_accuracy.identity"], 0.0);
}

TEST(CaptionAccuracy, AReversedClipGoesTheWrongWay) {
  auto reversed = clip("star", "orange", -1, 0).flip(0);  // a leftward clip played backwards moves right
  auto r = run_one(reversed, "orange", "star", "left");
  EXPECT_EQ(r["caption_accuracy.direction"], 0.0);
  EXPECT_EQ(r["caption_accuracy.path"], 0.0);
  EXPECT_EQ(r["caption_accuracy.identity"], 1.0);
  EXPECT_EQ(r["caption_accuracy.motion"], 1.0);  // it moves as far, the wrong way
}

TEST(CaptionAccuracy, EmptyOrNoisyFramesFail) {
  auto empty = run(torch::zeros({1, 8, 4, 16, 16}), {reference("green", "circle", "up")});
  for (const auto& key : kAllKeys) EXPECT_EQ(empty["caption_accuracy" + key], 0.0) << key;
  torch::manual_seed(0);
  auto noisy = clip("circle", "green", 1, 0);
  noisy.select(1, 3).copy_(torch::rand({8, 16, 16}));
  EXPECT_EQ(run_one(noisy, "green", "circle", "right")["caption_accuracy.clean"], 0.0);
}

TEST(CaptionAccuracy, DeclaresTheLabelsAndVocabularyItNeedsForTheCoreToCheck) {
  const asg::Requirements& needs = asg::testing::factory_under_test("caption_accuracy").requirements;
  EXPECT_EQ(needs.label_keys, (std::vector<std::string>{"colour", "shape", "direction"}));
  EXPECT_EQ(needs.vocabulary.name, asg::synthetic::kVocabularyName);
  EXPECT_EQ(needs.vocabulary.version, asg::synthetic::kVocabularyVersion);
}
