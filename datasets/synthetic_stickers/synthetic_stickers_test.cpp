#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/dataset.h"
#include "plugin_under_test.h"

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
  EXPECT_EQ(info.label_keys, (std::vector<std::string>{"colour", "shape", "direction"}));
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

TEST(SyntheticStickers, MotionIsInDiscreteJumpsInTheLabelledDirection) {
  auto ds = make({{"frames", int64_t{8}}, {"hold_frames", int64_t{2}}});
  for (int64_t i = 0; i < 24; ++i) {
    auto s = ds->get(asg::Split::Train, i);
    // Frames come in pairs that are identical (the sprite holds), and consecutive pairs differ (it jumps).
    for (int64_t t = 0; t < 8; t += 2) EXPECT_TRUE(torch::equal(s.frames[t], s.frames[t + 1])) << s.caption;
    auto [x0, y0] = centroid(s.frames, 0);
    auto [x1, y1] = centroid(s.frames, 7);
    const auto& dir = s.labels.at("direction");
    double along = (dir == "right" || dir == "left") ? x1 - x0 : y1 - y0;
    double sign = (dir == "right" || dir == "down") ? 1.0 : -1.0;
    EXPECT_GT(sign * along, 3) << s.caption;
  }
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
    EXPECT_STREQ(e.what(), "[dataset] colours contains 'magenta' (valid items: red, green, blue, yellow, purple, orange)");
  }
  auto ds = make({{"test_size", int64_t{4}}});
  EXPECT_THROW(ds->get(asg::Split::Test, 4), asg::Error);
}
