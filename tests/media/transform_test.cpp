// From a decoded sticker to a training sample (asg/media/transform.h): frame selection with known answers,
// alpha, resize filters and letterboxing, padding and the random-k mask.
#include "asg/media/transform.h"

#include "asg/media/sticker_file.h"
#include "asg/files.h"
#include "test_animation.h"
#include "test_paths.h"

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

namespace {

using Indices = std::vector<int64_t>;

asg::Animation solid_frames(const std::vector<std::array<uint8_t, 4>>& colours, const std::vector<int32_t>& durations = {},
                            int w = 4, int h = 4) {
  asg::Animation a;
  a.width = w;
  a.height = h;
  for (size_t t = 0; t < colours.size(); ++t) {
    asg::RgbaFrame f;
    f.duration_ms = durations.empty() ? 100 : durations[t];
    for (int i = 0; i < w * h; ++i) f.rgba.insert(f.rgba.end(), colours[t].begin(), colours[t].end());
    a.frames.push_back(std::move(f));
  }
  return a;
}

constexpr std::array<uint8_t, 4> kWhite{255, 255, 255, 255}, kBlack{0, 0, 0, 255}, kGrey{128, 128, 128, 255},
    kRed{255, 0, 0, 255}, kGreen{0, 255, 0, 255}, kBlue{0, 0, 255, 255};

asg::SampleTransform transform(int64_t frames, int64_t size) {
  asg::SampleTransform t;
  t.frames = frames;
  t.height = size;
  t.width = size;
  return t;
}

float at(const asg::SampleFrames& s, int64_t t, int c, int64_t y, int64_t x) {
  return s.rgba[static_cast<size_t>(((t * 4 + c) * s.height + y) * s.width + x)];
}

}  // namespace

TEST(FrameSelection, UniformIsRoundHalfUpOfLinspace) {
  const auto ten = solid_frames(std::vector<std::array<uint8_t, 4>>(10, kWhite));
  EXPECT_EQ(asg::select_frames(ten, asg::FrameSelection::Uniform, 4, 0, 0), (Indices{0, 3, 6, 9}));
  EXPECT_EQ(asg::select_frames(ten, asg::FrameSelection::Uniform, 1, 0, 0), (Indices{0}));
  const auto three = solid_frames({kWhite, kBlack, kGrey});
  // linspace(0, 2, 8) = 0, .29, .57, .86, 1.14, 1.43, 1.71, 2
  EXPECT_EQ(asg::select_frames(three, asg::FrameSelection::Uniform, 8, 0, 0), (Indices{0, 0, 1, 1, 1, 1, 2, 2}));
}

TEST(FrameSelection, FpsFollowsTheDelaysAndLoops) {
  const auto a = solid_frames({kWhite, kBlack, kGrey}, {100, 300, 100});
  // At 10 fps: t = 0, 100, ..., 500 ms; the loop is 500 ms long, so t = 500 shows frame 0 again.
  EXPECT_EQ(asg::select_frames(a, asg::FrameSelection::Fps, 6, 10, 0), (Indices{0, 1, 1, 1, 2, 0}));
  // At 4 fps: t = 0, 250, 500 -> 0, 1, 0.
  EXPECT_EQ(asg::select_frames(a, asg::FrameSelection::Fps, 3, 4, 0), (Indices{0, 1, 0}));
  // Delays of 0-10 ms play as 100 ms, as browsers do.
  const auto fast = solid_frames({kWhite, kBlack}, {0, 10});
  EXPECT_EQ(asg::select_frames(fast, asg::FrameSelection::Fps, 4, 10, 0), (Indices{0, 1, 0, 1}));
}

TEST(FrameSelection, LuvKeyframesAreFrameZeroAndTheLargestChanges) {
  // white white black black grey grey: the changes are at 2 (white -> black, large) and 4 (black -> grey).
  const auto a = solid_frames({kWhite, kWhite, kBlack, kBlack, kGrey, kGrey});
  EXPECT_EQ(asg::select_frames(a, asg::FrameSelection::Luv, 3, 0, 0), (Indices{0, 2, 4}));
  EXPECT_EQ(asg::select_frames(a, asg::FrameSelection::Luv, 2, 0, 0), (Indices{0, 2}));
  // Short animations give all their frames (then stretched or padded by make_sample).
  EXPECT_EQ(asg::select_frames(solid_frames({kWhite, kBlack}), asg::FrameSelection::Luv, 8, 0, 0), (Indices{0, 1}));
}

TEST(FrameSelection, KMeansPicksOneFramePerCluster) {
  // Three runs of one colour each: three clusters, each represented by its first (identical) frame.
  const auto a = solid_frames({kRed, kRed, kRed, kGreen, kGreen, kBlue, kBlue, kBlue});
  EXPECT_EQ(asg::select_frames(a, asg::FrameSelection::KMeans, 3, 0, 7), (Indices{0, 3, 5}));
  // Fewer distinct frames than asked: one each.
  EXPECT_EQ(asg::select_frames(a, asg::FrameSelection::KMeans, 6, 0, 7), (Indices{0, 3, 5}));
  // Two clusters of three distinct colours: two frames, distinct, in time order, the same for the same seed.
  const auto two = asg::select_frames(a, asg::FrameSelection::KMeans, 2, 0, 7);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_LT(two[0], two[1]);
  EXPECT_EQ(asg::select_frames(a, asg::FrameSelection::KMeans, 2, 0, 7), two);
}

TEST(SampleTransform, CompositesOverTheBackgroundOrKeepsAlpha) {
  const auto a = solid_frames({{255, 0, 0, 128}, {0, 0, 0, 0}});
  auto t = transform(2, 4);
  auto white = asg::make_sample(a, t, 0);
  EXPECT_NEAR(at(white, 0, 0, 1, 1), 1.0f, 1e-6);                  // 1 * a + 1 * (1 - a)
  EXPECT_NEAR(at(white, 0, 1, 1, 1), 1 - 128 / 255.0f, 1e-6);      // 0 * a + 1 * (1 - a)
  EXPECT_EQ(at(white, 0, 3, 1, 1), 1.0f);
  EXPECT_EQ(at(white, 1, 2, 0, 0), 1.0f);  // fully transparent: the background
  t.background = {0, 0, 255};
  EXPECT_NEAR(at(asg::make_sample(a, t, 0), 1, 2, 0, 0), 1.0f, 1e-6);
  EXPECT_NEAR(at(asg::make_sample(a, t, 0), 1, 0, 0, 0), 0.0f, 1e-6);
  t.keep_alpha = true;
  auto kept = asg::make_sample(a, t, 0);
  EXPECT_NEAR(at(kept, 0, 0, 2, 2), 1.0f, 1e-6);
  EXPECT_NEAR(at(kept, 0, 3, 2, 2), 128 / 255.0f, 1e-6);
  EXPECT_EQ(at(kept, 1, 3, 2, 2), 0.0f);
  EXPECT_EQ(kept.valid, (std::vector<uint8_t>{1, 1}));
}

TEST(SampleTransform, AreaDownscalingAveragesAndHiddenColourNeverBleeds) {
  // A 4x4 checkerboard of opaque black and white shrinks to 2x2 mid grey (area averaging, not sampling).
  asg::Animation board = solid_frames({kWhite});
  for (int i = 0; i < 16; ++i)
    if ((i % 4 + i / 4) % 2) std::fill_n(board.frames[0].rgba.begin() + i * 4, 3, 0);
  auto t = transform(1, 2);
  t.keep_alpha = true;
  auto grey = asg::make_sample(board, t, 0);
  // Resampling works in 16 bits (1/65025 steps): 32512.5 rounds to 32513.
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(at(grey, 0, c, 1, 0), 0.5f, 2e-5);
  // Left half transparent *red* (hidden colour), right half opaque blue: after shrinking, the edge pixel
  // is half-transparent blue, with no red in it (resizing works on premultiplied colour).
  asg::Animation edge = solid_frames({kBlue});
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 2; ++x) {
      uint8_t* p = &edge.frames[0].rgba[(y * 4 + x) * 4];
      p[0] = 255, p[1] = 0, p[2] = 0, p[3] = 0;
    }
  auto small = transform(1, 2);
  small.width = 1;
  small.keep_alpha = true;
  auto out = asg::make_sample(edge, small, 0);
  EXPECT_NEAR(at(out, 0, 3, 0, 0), 0.5f, 2e-5);
  EXPECT_EQ(at(out, 0, 0, 0, 0), 0.0f);  // no red at all
  EXPECT_NEAR(at(out, 0, 2, 0, 0), 1.0f, 2e-5);  // blue, unpremultiplied
}

TEST(SampleTransform, AreaShrinkingIsTheBoxMeanThatOpenCVsInterAreaComputes) {
  // Non-integer ratios (37x29 -> 10x7, 64x64 -> 17x64) and whole blocks (64x48 -> 16x12): each output
  // pixel is the mean of the source area it covers, which cv::resize(INTER_AREA) computes too. The
  // reference runs it on float premultiplied colour and composites over the background as the transform does.
  for (const auto& [w, h, out_w, out_h] :
       {std::array<int, 4>{37, 29, 10, 7}, std::array<int, 4>{64, 64, 17, 64}, std::array<int, 4>{64, 48, 16, 12}}) {
    const auto a = asg::testing::test_animation(w, h, 1);
    auto t = transform(1, out_h);
    t.width = out_w;
    t.background = {10, 200, 90};
    const auto sample = asg::make_sample(a, t, 0);
    cv::Mat premultiplied(h, w, CV_32FC4), expected;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const uint8_t* p = &a.frames[0].rgba[(static_cast<size_t>(y) * w + x) * 4];
        for (int c = 0; c < 3; ++c) premultiplied.at<cv::Vec4f>(y, x)[c] = p[c] * p[3] / 65025.0f;
        premultiplied.at<cv::Vec4f>(y, x)[3] = p[3] / 255.0f;
      }
    cv::resize(premultiplied, expected, cv::Size(out_w, out_h), 0, 0, cv::INTER_AREA);
    for (int y = 0; y < out_h; ++y)
      for (int x = 0; x < out_w; ++x) {
        const cv::Vec4f e = expected.at<cv::Vec4f>(y, x);
        for (int c = 0; c < 3; ++c)
          ASSERT_NEAR(at(sample, 0, c, y, x), e[c] + t.background[c] / 255.0f * (1 - e[3]), 1e-5) << w << "x" << h << " " << x << "," << y;
      }
  }
}

TEST(SampleTransform, LetterboxKeepsTheAspectAndCentres) {
  const auto wide = solid_frames({kRed}, {}, 20, 10);
  auto t = transform(1, 8);
  t.resize = asg::ResizeMode::Letterbox;
  t.keep_alpha = true;
  auto boxed = asg::make_sample(wide, t, 0);  // 20x10 -> 8x4, rows 2..5
  for (int64_t y = 0; y < 8; ++y) EXPECT_EQ(at(boxed, 0, 3, y, 3), (y >= 2 && y < 6) ? 1.0f : 0.0f) << y;
  t.keep_alpha = false;
  t.background = {0, 255, 0};
  auto green_bars = asg::make_sample(wide, t, 0);
  EXPECT_EQ(at(green_bars, 0, 1, 0, 0), 1.0f);
  EXPECT_EQ(at(green_bars, 0, 0, 0, 0), 0.0f);
  EXPECT_EQ(at(green_bars, 0, 0, 3, 3), 1.0f);
  t.resize = asg::ResizeMode::Stretch;  // the paper's choice: the red fills the canvas
  EXPECT_EQ(at(asg::make_sample(wide, t, 0), 0, 0, 0, 0), 1.0f);
  // Enlarging uses bicubic (auto) and stays in [0, 1] despite overshoot at hard edges.
  asg::Animation board = solid_frames({kWhite});
  for (int i = 0; i < 16; ++i)
    if ((i % 4 + i / 4) % 2) std::fill_n(board.frames[0].rgba.begin() + i * 4, 3, 0);
  auto up = transform(1, 32);
  up.keep_alpha = true;
  const auto big = asg::make_sample(board, up, 0);
  float low = 1, high = 0;
  for (float v : big.rgba) low = std::min(low, v), high = std::max(high, v);
  EXPECT_GE(low, 0.0f);
  EXPECT_LE(high, 1.0f);
}

TEST(SampleTransform, ShortSelectionsStretchOrPadWithAMask) {
  const auto a = solid_frames({kWhite, kBlack, kGrey}, {50, 60, 70});
  auto t = transform(5, 4);
  t.selection = asg::FrameSelection::Luv;
  auto stretched = asg::make_sample(a, t, 0);
  EXPECT_EQ(stretched.source_frames, (Indices{0, 1, 1, 2, 2}));  // round-half-up of linspace(0, 2, 5): 0, .5, 1, 1.5, 2
  EXPECT_EQ(stretched.valid, (std::vector<uint8_t>(5, 1)));
  t.pad_short = true;
  auto padded = asg::make_sample(a, t, 0);
  EXPECT_EQ(padded.source_frames, (Indices{0, 1, 2, 2, 2}));
  EXPECT_EQ(padded.valid, (std::vector<uint8_t>{1, 1, 1, 0, 0}));
  EXPECT_EQ(padded.durations_ms, (std::vector<int32_t>{50, 60, 70, 0, 0}));
  // A static sticker is a 1-frame sample (frames = 1), or a still clip when stretched.
  auto still = transform(1, 4);
  EXPECT_EQ(asg::make_sample(solid_frames({kRed}, {0}), still, 0).source_frames, (Indices{0}));
}

TEST(SampleTransform, RandomFramesDrawKInRangePerSampleAndMaskThePadding) {
  std::vector<std::array<uint8_t, 4>> colours;
  for (int i = 0; i < 12; ++i) colours.push_back({static_cast<uint8_t>(20 * i), 0, 0, 255});
  const auto a = solid_frames(colours);
  auto t = transform(8, 4);
  t.random_min = 3;
  t.random_max = 8;
  std::set<int64_t> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const auto s = asg::make_sample(a, t, seed);
    int64_t k = 0;
    for (uint8_t v : s.valid) k += v;
    ASSERT_GE(k, 3);
    ASSERT_LE(k, 8);
    for (int64_t i = 0; i < 8; ++i) ASSERT_EQ(s.valid[i], i < k ? 1 : 0);
    // The k real frames are uniform over the sticker: first and last frame included.
    EXPECT_EQ(s.source_frames[0], 0);
    EXPECT_EQ(s.source_frames[k - 1], 11);
    seen.insert(k);
    EXPECT_EQ(asg::make_sample(a, t, seed).valid, s.valid);  // the same seed, the same k
  }
  EXPECT_EQ(seen, (std::set<int64_t>{3, 4, 5, 6, 7, 8}));
}

TEST(LoadSample, DecodingOnlyTheNeededGifFramesGivesTheSameSample) {
  const auto dir = asg::testing::make_temp_dir("load-sample");
  asg::write_gif(dir / "a.gif", asg::testing::test_animation(20, 14, 24, true));
  const std::string bytes = asg::read_text_file(dir / "a.gif");
  const std::span<const uint8_t> span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  // Only 8 of 24 frames are shown; the writer's frames restore the background, so the other 16 are skipped.
  std::vector<bool> needed(24, false);
  for (int f : {0, 3, 7}) needed[f] = true;
  const auto partial = asg::decode_gif(span, "a.gif", {}, needed);
  const auto full = asg::decode_gif(span, "a.gif");
  ASSERT_EQ(partial.frames.size(), 24u);
  for (int f = 0; f < 24; ++f) {
    EXPECT_EQ(partial.frames[f].duration_ms, full.frames[f].duration_ms);
    if (needed[f]) EXPECT_EQ(partial.frames[f].rgba, full.frames[f].rgba) << f;
    else EXPECT_TRUE(partial.frames[f].rgba.empty()) << f;
  }
  EXPECT_EQ(asg::gif_timing(span, "a.gif").frames.size(), 24u);
  for (auto selection : {asg::FrameSelection::Uniform, asg::FrameSelection::Fps}) {
    auto t = transform(8, 12);
    t.selection = selection;
    t.fps = 12;
    const auto fast = asg::load_sample(span, "a.gif", {}, t, 5);
    const auto reference = asg::make_sample(asg::decode_sticker(span, "a.gif").animation, t, 5);
    EXPECT_EQ(fast.source_frames, reference.source_frames);
    EXPECT_EQ(fast.rgba, reference.rgba);
    EXPECT_EQ(fast.durations_ms, reference.durations_ms);
    EXPECT_EQ(asg::load_sample(dir / "a.gif", {}, t, 5).rgba, reference.rgba);
  }
  std::filesystem::remove_all(dir);
}
