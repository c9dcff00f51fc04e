#include "asg/media/gif.h"

#include <gtest/gtest.h>

#include <fstream>

#include "asg/error.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

asg::Animation make(int w, int h, int frames, bool many_colours) {
  asg::Animation a;
  a.width = w;
  a.height = h;
  for (int t = 0; t < frames; ++t) {
    asg::RgbaFrame f;
    f.duration_ms = 100 * (t + 1);
    f.rgba.assign(static_cast<size_t>(w) * h * 4, 0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        uint8_t* p = &f.rgba[(static_cast<size_t>(y) * w + x) * 4];
        if (!many_colours && (x + t) % 5 == 0) continue;  // transparent stripes that move
        p[0] = many_colours ? static_cast<uint8_t>(x * 255 / w) : 200;
        p[1] = many_colours ? static_cast<uint8_t>(y * 255 / h) : static_cast<uint8_t>(40 * t);
        p[2] = many_colours ? static_cast<uint8_t>((x * y + t * 31) % 256) : 10;
        p[3] = 255;
      }
    a.frames.push_back(std::move(f));
  }
  return a;
}

}  // namespace

TEST(Gif, RoundTripsFlatColoursTransparencyAndTiming) {
  auto dir = asg::testing::make_temp_dir("gif");
  auto in = make(20, 12, 4, false);
  asg::write_gif(dir / "a.gif", in);
  auto out = asg::read_gif(dir / "a.gif");
  EXPECT_EQ(out.width, 20);
  EXPECT_EQ(out.height, 12);
  EXPECT_EQ(out.loop_count, 0);  // loops forever
  ASSERT_EQ(out.frames.size(), 4u);
  for (size_t t = 0; t < 4; ++t) {
    EXPECT_EQ(out.frames[t].duration_ms, in.frames[t].duration_ms);
    // Exact palette: every pixel comes back identical, transparent ones as (0,0,0,0).
    EXPECT_EQ(out.frames[t].rgba, in.frames[t].rgba) << "frame " << t;
  }
  fs::remove_all(dir);
}

TEST(Gif, QuantizesFramesWithManyColoursClosely) {
  auto dir = asg::testing::make_temp_dir("gif");
  auto in = make(64, 64, 2, true);
  asg::write_gif(dir / "b.gif", in);
  auto out = asg::read_gif(dir / "b.gif");
  ASSERT_EQ(out.frames.size(), 2u);
  double err = 0;
  for (size_t i = 0; i < in.frames[0].rgba.size(); ++i) err += std::abs(int(in.frames[0].rgba[i]) - int(out.frames[0].rgba[i]));
  EXPECT_LT(err / in.frames[0].rgba.size(), 12.0);  // mean absolute error per channel, 0..255
  fs::remove_all(dir);
}

TEST(Gif, ThePaletteIsChosenPerStickerSoColoursDoNotFlicker) {
  auto dir = asg::testing::make_temp_dir("gif");
  // Every frame has thousands of colours, and frame 1 repeats frame 0's left half exactly: one palette for
  // the sticker maps those pixels to the same colour in both frames (per-frame palettes would not).
  auto in = make(64, 64, 2, true);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 4; ++c) in.frames[1].rgba[(y * 64 + x) * 4 + c] = in.frames[0].rgba[(y * 64 + x) * 4 + c];
  asg::write_gif(dir / "c.gif", in);
  auto out = asg::read_gif(dir / "c.gif");
  ASSERT_EQ(out.frames.size(), 2u);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 32; ++x)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(out.frames[1].rgba[(y * 64 + x) * 4 + c], out.frames[0].rgba[(y * 64 + x) * 4 + c]) << x << "," << y;
  // 300 colours in the sticker but at most 200 per frame: exact palettes per frame, every pixel exact.
  asg::Animation split;
  split.width = 20;
  split.height = 10;
  for (int t = 0; t < 2; ++t) {
    asg::RgbaFrame f;
    for (int i = 0; i < 200; ++i) {
      const int colour = t * 100 + i;  // frame 0: 0..199, frame 1: 100..299
      f.rgba.insert(f.rgba.end(), {static_cast<uint8_t>(colour % 256), static_cast<uint8_t>(colour / 256), 7, 255});
    }
    split.frames.push_back(f);
  }
  asg::write_gif(dir / "d.gif", split);
  const auto exact = asg::read_gif(dir / "d.gif");
  for (size_t t = 0; t < 2; ++t) EXPECT_EQ(exact.frames[t].rgba, split.frames[t].rgba) << t;
  fs::remove_all(dir);
}

TEST(Gif, ReadErrorsNameTheFile) {
  auto dir = asg::testing::make_temp_dir("gif");
  std::ofstream(dir / "bad.gif") << "GIF89a but then garbage";
  try {
    asg::read_gif(dir / "bad.gif");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_EQ(std::string(e.what()).rfind((dir / "bad.gif").string() + ": ", 0), 0u) << e.what();
  }
  EXPECT_THROW(asg::read_gif(dir / "missing.gif"), asg::Error);
  fs::remove_all(dir);
}

TEST(Gif, AWriteThatCannotHappenNamesTheFileAndLeavesNothingBehind) {
  auto dir = asg::testing::make_temp_dir("gif");
  const fs::path target = dir / "no_such_folder" / "out.gif";
  try {
    asg::write_gif(target, make(8, 8, 2, false));
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
  }
  // A rewrite over an existing GIF replaces it whole: the old file never turns into half a new one.
  asg::write_gif(dir / "a.gif", make(8, 8, 2, false));
  asg::write_gif(dir / "a.gif", make(12, 10, 3, true));
  const auto back = asg::read_gif(dir / "a.gif");
  EXPECT_EQ(back.width, 12);
  EXPECT_EQ(back.frames.size(), 3u);
  EXPECT_FALSE(fs::exists(dir / "a.gif.tmp"));
  fs::remove_all(dir);
}
