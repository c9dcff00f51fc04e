#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/dataset.h"
#include "plugin_under_test.h"
#include "sprite_vocabulary.h"

#include <set>

using asg::testing::make_under_test;

namespace {

std::shared_ptr<asg::Dataset> make(const std::map<std::string, asg::ParamValue>& p = {}) {
  return make_under_test<asg::Dataset>("synthetic_stickers", p);
}

// Centroid (x, y) of the alpha mask of frame t.
std::pair<double, double> centroid(const torch::Tensor& frames, int64_t t) {
  auto alpha = frames[t][3];
  auto ys = torch::arange(alpha.size(0)).to(torch::kFloat).unsqueeze(1).expand_as(alpha);
  auto xs = torch::arange(alpha.size(1)).to(torch::kFloat).unsqueeze(0).expand_as(alpha);
  double n = alpha.sum().item<double>();
  return {(xs * alpha).sum().item<double>() / n, (ys * alpha).sum().item<double>() / n};
}

}  // namespace

TEST(SyntheticStickers, InfoAndSplitSizesFollowParameters) {
  auto ds = make({{"size", int64_t{24}}, {"frames", int64_t{6}}, {"test_size", int64_t{7}}});
  auto info = ds->info();
  EXPECT_EQ(info.frames, 6);
  EXPECT_EQ(info.height, 24);
  EXPECT_EQ(info.width, 24);
  EXPECT_EQ(ds->size(asg::Split::Test), 7);
  EXPECT_EQ(info.label_keys, (std::vector<std::string>{"colour", "shape", "direction", "hold_frames", "jump"}));
  EXPECT_EQ(info.vocabulary.name, "sprite-vocabulary");
  EXPECT_EQ(info.vocabulary.version, asg::synthetic::kVocabularyVersion);
}

TEST(SyntheticStickers, SamplesAreDeterministicAndIndependentOfAccessOrder) {
  auto a = make(), b = make();
  auto late = a->get(asg::Split::Train, 1234);
  a->get(asg::Split::Train, 5);
  auto again = a->get(asg::Split::Train, 1234);
  auto other = b->get(asg::Split::Train, 1234);
  EXPECT_TRUE(torch::equal(late.frames, again.frames));
  EXPECT_TRUE(torch::equal(late.frames, other.frames));
  EXPECT_EQ(late.caption, other.caption);
  EXPECT_FALSE(torch::equal(a->get(asg::Split::Test, 1234 % 256).frames, late.frames) &&
               a->get(asg::Split::Test, 1234 % 256).caption == late.caption);
}

TEST(SyntheticStickers, DatasetSeedChangesTheData) {
  auto a = make({{"seed", int64_t{1}}})->get(asg::Split::Train, 0);
  auto b = make({{"seed", int64_t{2}}})->get(asg::Split::Train, 0);
  EXPECT_FALSE(torch::equal(a.frames, b.frames));
}

TEST(SyntheticStickers, FramesAreRgbaOnTransparencyInTheCaptionedColour) {
  auto s = make()->get(asg::Split::Test, 3);
  ASSERT_EQ(s.frames.sizes(), (std::vector<int64_t>{8, 4, 16, 16}));
  auto alpha = s.frames.select(1, 3);
  EXPECT_TRUE(torch::logical_or(alpha == 0, alpha == 1).all().item<bool>());  // hard-edged sprites
  EXPECT_GT(alpha.sum().item<double>(), 0);
  EXPECT_LT(alpha.mean().item<double>(), 0.6);  // mostly transparent
  EXPECT_EQ(s.caption.rfind("a " + s.labels.at("colour") + " " + s.labels.at("shape") + " jumping from ", 0), 0u) << s.caption;
  // Every opaque pixel has the palette colour of the label.
  auto rgb = s.frames.narrow(1, 0, 3).permute({0, 2, 3, 1}).reshape({-1, 3});
  auto opaque = rgb.index({alpha.reshape({-1}) > 0.5});
  auto expected = opaque[0];
  EXPECT_TRUE((opaque - expected).abs().max().item<double>() < 1e-6);
}

TEST(SyntheticStickers, MotionIsOneSpriteJumpingEqualStepsInTheLabelledDirection) {
  auto ds = make();
  for (int64_t i = 0; i < 64; ++i) {
    auto s = ds->get(asg::Split::Train, i);
    const auto& dir = s.labels.at("direction");
    const int64_t hold = std::stoi(s.labels.at("hold_frames")), jump = std::stoi(s.labels.at("jump"));
    EXPECT_TRUE(hold == 2 || hold == 3) << s.caption;
    EXPECT_TRUE(jump >= 2 && jump <= 4) << s.caption;
    const bool horizontal = dir == "right" || dir == "left";
    const double sign = (dir == "right" || dir == "down") ? 1.0 : -1.0;
    int64_t jumps = 0, run = 1;
    for (int64_t t = 1; t < 8; ++t) {
      auto [x0, y0] = centroid(s.frames, t - 1);
      auto [x1, y1] = centroid(s.frames, t);
      double along = sign * (horizontal ? x1 - x0 : y1 - y0), cross = horizontal ? y1 - y0 : x1 - x0;
      EXPECT_NEAR(cross, 0.0, 1e-9) << s.caption;
      if (along == 0) {
        ++run;
        EXPECT_TRUE(torch::equal(s.frames[t], s.frames[t - 1])) << s.caption;  // holds are exact
        continue;
      }
      EXPECT_NEAR(along, static_cast<double>(jump), 1e-9) << s.caption << " frame " << t;
      EXPECT_LE(run, hold) << s.caption;  // no position is held longer than the clip's hold
      if (jumps > 0) {
        EXPECT_EQ(run, hold) << s.caption;  // inner holds are complete
      }
      ++jumps;
      run = 1;
      // The sprite is the same mask, translated: same pixel count.
      EXPECT_EQ(s.frames[t][3].sum().item<double>(), s.frames[t - 1][3].sum().item<double>()) << s.caption;
    }
    EXPECT_GE(jumps, 2) << s.caption;
  }
}

TEST(SyntheticStickers, APositionIsNotAFunctionOfFrameIndexAndCaption) {
  // Starts, jump sizes, hold lengths and phases vary per clip: for one caption, the sprite's position
  // in a given frame takes many values, so only frames that agree with each other trace the path.
  auto ds = make({{"colours", std::vector<std::string>{"red"}},
                  {"shapes", std::vector<std::string>{"square"}},
                  {"directions", std::vector<std::string>{"right"}}});
  std::set<double> first_x, last_x;
  std::set<std::string> holds, jumps;
  for (int64_t i = 0; i < 200; ++i) {
    auto s = ds->get(asg::Split::Train, i);
    first_x.insert(centroid(s.frames, 0).first);
    last_x.insert(centroid(s.frames, 7).first);
    holds.insert(s.labels.at("hold_frames"));
    jumps.insert(s.labels.at("jump"));
  }
  EXPECT_GE(first_x.size(), 3u);
  EXPECT_GE(last_x.size(), 3u);
  EXPECT_EQ(holds, (std::set<std::string>{"2", "3"}));
  EXPECT_EQ(jumps, (std::set<std::string>{"2", "3", "4"}));
}

TEST(SyntheticStickers, RefusesMotionThatDoesNotFitTheCanvas) {
  try {
    make({{"jump", std::vector<int64_t>{4, 6}}});
    FAIL() << "expected a config error";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(),
                 "the motion does not fit the canvas: a 8px sprite (sprite_scale = 0.45) leaves 8px of travel on a 16px "
                 "canvas, but 8 frames with hold_frames min 2 make 5 positions, and jump min 4 needs 16px (valid: lower "
                 "sprite_scale or jump min, raise hold_frames min, or use a larger size)");
  }
  EXPECT_THROW(make({{"hold_frames", std::vector<int64_t>{3, 2}}}), asg::Error);
  EXPECT_THROW(make({{"hold_frames", std::vector<int64_t>{2, 8}}}), asg::Error);  // a clip that never jumps
  EXPECT_NO_THROW(make({{"jump", std::vector<int64_t>{4, 6}}, {"size", int64_t{32}}}));
}

TEST(SyntheticStickers, AllAttributeValuesOccur) {
  auto ds = make();
  std::set<std::string> colours, shapes, dirs;
  for (int64_t i = 0; i < 200; ++i) {
    auto s = ds->get(asg::Split::Train, i);
    colours.insert(s.labels.at("colour"));
    shapes.insert(s.labels.at("shape"));
    dirs.insert(s.labels.at("direction"));
  }
  EXPECT_EQ(colours.size(), 6u);
  EXPECT_EQ(shapes.size(), 4u);
  EXPECT_EQ(dirs.size(), 4u);
}

TEST(SyntheticStickers, RestrictingTheVocabularyIsHonoured) {
  auto ds = make({{"colours", std::vector<std::string>{"blue"}}, {"shapes", std::vector<std::string>{"star"}}});
  for (int64_t i = 0; i < 20; ++i) {
    auto s = ds->get(asg::Split::Train, i);
    EXPECT_EQ(s.labels.at("colour"), "blue");
    EXPECT_EQ(s.labels.at("shape"), "star");
  }
}

TEST(SyntheticStickers, RejectsUnknownVocabularyAndOutOfRangeIndex) {
  try {
    make({{"colours", std::vector<std::string>{"magenta"}}});
    FAIL() << "expected an error";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(), "colours contains 'magenta' (valid items: red, green, blue, yellow, purple, orange)");
  }
  auto ds = make({{"test_size", int64_t{4}}});
  EXPECT_THROW(ds->get(asg::Split::Test, 4), asg::Error);
}
