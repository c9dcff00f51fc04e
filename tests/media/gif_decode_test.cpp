// The GIF decoder on files these tests write with giflib's encoder, one feature at a time: global and
// local palettes, sub-rectangle frames, transparency, every disposal mode, interlacing, delays (zero
// included), loop counts, a 200-frame sticker, odd sizes, and the decode limits. Each expected canvas is
// written out by hand.
#include <gif_lib.h>
#include <gtest/gtest.h>

#include <fstream>
#include <optional>

#include "asg/error.h"
#include "asg/media/gif.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

using Rgb = std::array<uint8_t, 3>;
using Rgba = std::array<uint8_t, 4>;

struct FrameSpec {
  int left = 0, top = 0, width = 0, height = 0;
  std::vector<uint8_t> indices;  // row-major, natural row order
  std::optional<std::vector<Rgb>> local_palette;
  int disposal = DISPOSAL_UNSPECIFIED;
  int transparent = NO_TRANSPARENT_COLOR;
  int delay_cs = 10;  // hundredths of a second
  bool interlace = false;
};

struct GifSpec {
  int width = 0, height = 0;
  std::optional<std::vector<Rgb>> global_palette;
  std::optional<int> loop;  // NETSCAPE2.0 loop count; none = no extension
  std::vector<FrameSpec> frames;
};

ColorMapObject* palette(const std::vector<Rgb>& colours) {
  int size = 2;
  while (size < static_cast<int>(colours.size())) size *= 2;
  std::vector<GifColorType> c(size, GifColorType{0, 0, 0});
  for (size_t i = 0; i < colours.size(); ++i) c[i] = GifColorType{colours[i][0], colours[i][1], colours[i][2]};
  return GifMakeMapObject(size, c.data());
}

// Writes `spec` with giflib's low-level encoder; interlaced frames get their rows in interlaced order.
void write_spec(const fs::path& file, const GifSpec& spec) {
  int err = 0;
  GifFileType* gif = EGifOpenFileName(file.c_str(), false, &err);
  ASSERT_NE(gif, nullptr);
  ColorMapObject* global = spec.global_palette ? palette(*spec.global_palette) : nullptr;
  ASSERT_NE(EGifPutScreenDesc(gif, spec.width, spec.height, 8, 0, global), GIF_ERROR);
  if (global) GifFreeMapObject(global);
  EGifSetGifVersion(gif, true);
  if (spec.loop) {
    ASSERT_NE(EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE), GIF_ERROR);
    ASSERT_NE(EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0"), GIF_ERROR);
    const unsigned char loop[3] = {1, static_cast<unsigned char>(*spec.loop & 0xff), static_cast<unsigned char>(*spec.loop >> 8)};
    ASSERT_NE(EGifPutExtensionBlock(gif, 3, loop), GIF_ERROR);
    ASSERT_NE(EGifPutExtensionTrailer(gif), GIF_ERROR);
  }
  for (const auto& f : spec.frames) {
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = f.disposal;
    gcb.DelayTime = f.delay_cs;
    gcb.TransparentColor = f.transparent;
    GifByteType ext[4];
    const size_t len = EGifGCBToExtension(&gcb, ext);
    ASSERT_NE(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(len), ext), GIF_ERROR);
    ColorMapObject* local = f.local_palette ? palette(*f.local_palette) : nullptr;
    // giflib forgets (without freeing) the previous frame's local palette when a frame has none.
    if (!local && gif->Image.ColorMap) {
      GifFreeMapObject(gif->Image.ColorMap);
      gif->Image.ColorMap = nullptr;
    }
    ASSERT_NE(EGifPutImageDesc(gif, f.left, f.top, f.width, f.height, f.interlace, local), GIF_ERROR);
    if (local) GifFreeMapObject(local);
    std::vector<int> rows;
    if (f.interlace) {
      for (int pass = 0; pass < 4; ++pass)
        for (int y = std::array{0, 4, 2, 1}[pass]; y < f.height; y += std::array{8, 8, 4, 2}[pass]) rows.push_back(y);
    } else {
      for (int y = 0; y < f.height; ++y) rows.push_back(y);
    }
    for (int y : rows) {
      std::vector<GifByteType> line(f.indices.begin() + y * f.width, f.indices.begin() + (y + 1) * f.width);
      ASSERT_NE(EGifPutLine(gif, line.data(), f.width), GIF_ERROR);
    }
  }
  ASSERT_NE(EGifCloseFile(gif, &err), GIF_ERROR);
}

Rgba px(const asg::Animation& a, size_t frame, int x, int y) {
  const uint8_t* p = &a.frames[frame].rgba[(static_cast<size_t>(y) * a.width + x) * 4];
  return {p[0], p[1], p[2], p[3]};
}

constexpr Rgba kClear{0, 0, 0, 0};
constexpr Rgba kRed{255, 0, 0, 255}, kGreen{0, 255, 0, 255}, kBlue{0, 0, 255, 255}, kWhite{255, 255, 255, 255};
const std::vector<Rgb> kGlobal = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};  // 0 black, 1 red, 2 green, 3 blue

class GifDecode : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = asg::testing::make_temp_dir("gif-decode"); }
  void TearDown() override { fs::remove_all(dir_); }
  asg::Animation decode(const GifSpec& spec, const asg::DecodeLimits& limits = {}) {
    write_spec(dir_ / "t.gif", spec);
    return asg::read_gif(dir_ / "t.gif", limits);
  }
  fs::path dir_;
};

}  // namespace

TEST_F(GifDecode, EveryDisposalModeOnSubRectangles) {
  GifSpec spec{4, 4, kGlobal, 0, {}};
  // 0: the whole canvas red.
  spec.frames.push_back({0, 0, 4, 4, std::vector<uint8_t>(16, 1), {}, DISPOSE_DO_NOT});
  // 1: a 2x2 green square at (1,1), then restored to what was there before (red).
  spec.frames.push_back({1, 1, 2, 2, std::vector<uint8_t>(4, 2), {}, DISPOSE_PREVIOUS});
  // 2: a 2x1 blue bar at (0,3), then cleared to transparent.
  spec.frames.push_back({0, 3, 2, 1, std::vector<uint8_t>(2, 3), {}, DISPOSE_BACKGROUND});
  // 3: one green pixel at (3,0), kept.
  spec.frames.push_back({3, 0, 1, 1, {2}, {}, DISPOSE_DO_NOT});
  const auto a = decode(spec);
  ASSERT_EQ(a.frames.size(), 4u);
  EXPECT_EQ(px(a, 0, 0, 0), kRed);
  EXPECT_EQ(px(a, 1, 1, 1), kGreen);
  EXPECT_EQ(px(a, 1, 2, 2), kGreen);
  EXPECT_EQ(px(a, 1, 0, 0), kRed);
  EXPECT_EQ(px(a, 2, 1, 1), kRed) << "restore-to-previous must undo frame 1";
  EXPECT_EQ(px(a, 2, 0, 3), kBlue);
  EXPECT_EQ(px(a, 2, 1, 3), kBlue);
  EXPECT_EQ(px(a, 3, 0, 3), kClear) << "restore-to-background clears frame 2's rectangle";
  EXPECT_EQ(px(a, 3, 1, 3), kClear);
  EXPECT_EQ(px(a, 3, 2, 3), kRed) << "outside the rectangle nothing is cleared";
  EXPECT_EQ(px(a, 3, 3, 0), kGreen);
  EXPECT_EQ(px(a, 3, 1, 1), kRed);
}

TEST_F(GifDecode, LocalPalettesOverrideTheGlobalOneAndTransparencyShowsWhatIsBelow) {
  GifSpec spec{3, 1, kGlobal, {}, {}};
  spec.frames.push_back({0, 0, 3, 1, {1, 1, 1}, {}, DISPOSE_DO_NOT});
  // Local palette: 0 = white, 1 = blue, 2 = the transparent index.
  spec.frames.push_back({0, 0, 3, 1, {0, 1, 2}, std::vector<Rgb>{{255, 255, 255}, {0, 0, 255}, {9, 9, 9}}, DISPOSE_DO_NOT, 2});
  // Back to the global palette with index 1 = red; index 0 transparent here.
  spec.frames.push_back({0, 0, 3, 1, {0, 3, 0}, {}, DISPOSE_DO_NOT, 0});
  const auto a = decode(spec);
  ASSERT_EQ(a.frames.size(), 3u);
  EXPECT_EQ(px(a, 1, 0, 0), kWhite);
  EXPECT_EQ(px(a, 1, 1, 0), kBlue);
  EXPECT_EQ(px(a, 1, 2, 0), kRed) << "the transparent index shows the frame below";
  EXPECT_EQ(px(a, 2, 0, 0), kWhite);
  EXPECT_EQ(px(a, 2, 1, 0), kBlue) << "index 3 of the global palette";
  EXPECT_EQ(px(a, 2, 2, 0), kRed);
}

TEST_F(GifDecode, FramesWithoutAGlobalPaletteUseTheirOwn) {
  GifSpec spec{2, 1, std::nullopt, {}, {}};
  spec.frames.push_back({0, 0, 2, 1, {0, 1}, std::vector<Rgb>{{0, 0, 255}, {0, 255, 0}}});
  const auto a = decode(spec);
  EXPECT_EQ(px(a, 0, 0, 0), kBlue);
  EXPECT_EQ(px(a, 0, 1, 0), kGreen);
  // No palette at all (giflib's encoder refuses to write one, so the bytes are spelled out): refused,
  // naming the frame.
  const unsigned char no_palette[] = {
      'G', 'I', 'F', '8', '9', 'a', 2, 0, 1, 0, 0x00, 0, 0,  // 2x1 screen, no global colour table
      0x2C, 0, 0, 0, 0, 2, 0, 1, 0, 0x00,                    // image 2x1 at (0,0), no local colour table
      2, 2, 0x44, 0x0A, 0,                                   // LZW: clear, 0, 1, end
      0x3B};
  std::ofstream(dir_ / "none.gif", std::ios::binary).write(reinterpret_cast<const char*>(no_palette), sizeof(no_palette));
  try {
    asg::read_gif(dir_ / "none.gif");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(std::string(e.what()), (dir_ / "none.gif").string() + ": frame 0 has no colour map (neither its own nor a global one)");
  }
}

TEST_F(GifDecode, InterlacedFramesComeBackInRowOrder) {
  // 3x11 rows: every pass of the interlace scheme has rows, and the height is not a multiple of 8.
  GifSpec spec{3, 11, kGlobal, {}, {}};
  FrameSpec f{0, 0, 3, 11, {}, {}, DISPOSE_DO_NOT};
  for (int y = 0; y < 11; ++y)
    for (int x = 0; x < 3; ++x) f.indices.push_back(static_cast<uint8_t>(1 + y % 3));
  f.interlace = true;
  spec.frames.push_back(f);
  const auto a = decode(spec);
  for (int y = 0; y < 11; ++y) EXPECT_EQ(px(a, 0, 1, y), (std::array{kRed, kGreen, kBlue})[y % 3]) << "row " << y;
}

TEST_F(GifDecode, DelaysIncludingZeroAndLoopCounts) {
  GifSpec spec{1, 1, kGlobal, 3, {}};
  for (int cs : {0, 7, 250}) spec.frames.push_back({0, 0, 1, 1, {1}, {}, DISPOSE_DO_NOT, NO_TRANSPARENT_COLOR, cs});
  auto a = decode(spec);
  ASSERT_EQ(a.frames.size(), 3u);
  EXPECT_EQ(a.frames[0].duration_ms, 0);
  EXPECT_EQ(a.frames[1].duration_ms, 70);
  EXPECT_EQ(a.frames[2].duration_ms, 2500);
  EXPECT_EQ(a.loop_count, 3);
  spec.loop = std::nullopt;
  EXPECT_EQ(decode(spec).loop_count, -1) << "no NETSCAPE2.0 extension: plays once";
  spec.loop = 0;
  EXPECT_EQ(decode(spec).loop_count, 0) << "loops forever";
}

TEST_F(GifDecode, TwoHundredFramesAndOddSizes) {
  GifSpec spec{7, 5, kGlobal, 0, {}};
  for (int t = 0; t < 200; ++t)
    spec.frames.push_back({t % 7, t % 5, 1, 1, {static_cast<uint8_t>(1 + t % 3)}, {}, DISPOSE_BACKGROUND, NO_TRANSPARENT_COLOR, 2});
  const auto a = decode(spec);
  ASSERT_EQ(a.frames.size(), 200u);
  EXPECT_EQ(a.width, 7);
  EXPECT_EQ(a.height, 5);
  for (int t : {0, 1, 99, 199}) {
    EXPECT_EQ(px(a, t, t % 7, t % 5), (std::array{kRed, kGreen, kBlue})[t % 3]) << t;
    int opaque = 0;
    for (size_t i = 3; i < a.frames[t].rgba.size(); i += 4) opaque += a.frames[t].rgba[i] == 255;
    EXPECT_EQ(opaque, 1) << "each frame's pixel is cleared before the next";
  }
}

TEST_F(GifDecode, LimitsAreCheckedBeforeTheFramesAreDecoded) {
  GifSpec spec{4, 4, kGlobal, 0, {}};
  for (int t = 0; t < 10; ++t) spec.frames.push_back({0, 0, 4, 4, std::vector<uint8_t>(16, 1), {}});
  write_spec(dir_ / "t.gif", spec);
  auto error = [&](const asg::DecodeLimits& limits) {
    try {
      asg::read_gif(dir_ / "t.gif", limits);
    } catch (const asg::Error& e) {
      return std::string(e.what());
    }
    return std::string("(decoded)");
  };
  EXPECT_EQ(error({16, 10, 10 * 64}), "(decoded)");
  EXPECT_EQ(error({15, 10, 1 << 20}), (dir_ / "t.gif").string() +
                                          ": the canvas is 4x4; valid: at least 1x1 and at most 15 pixels (data.max_canvas_pixels)");
  EXPECT_EQ(error({16, 9, 1 << 20}), (dir_ / "t.gif").string() + ": more than 9 frames (data.max_frames)");
  EXPECT_EQ(error({16, 100, 9 * 64}),
            (dir_ / "t.gif").string() + ": 10 frames of 4x4 RGBA need more than 576 bytes (data.max_decoded_bytes)");
}

TEST_F(GifDecode, AMissingTrailerIsAcceptedButAFrameCutShortIsNot) {
  GifSpec spec{4, 4, kGlobal, 0, {}};
  for (int t = 0; t < 2; ++t) spec.frames.push_back({0, 0, 4, 4, std::vector<uint8_t>(16, static_cast<uint8_t>(1 + t)), {}});
  write_spec(dir_ / "t.gif", spec);
  const auto size = fs::file_size(dir_ / "t.gif");
  fs::copy_file(dir_ / "t.gif", dir_ / "no_trailer.gif");
  fs::resize_file(dir_ / "no_trailer.gif", size - 1);  // drop the ';' trailer
  EXPECT_EQ(asg::read_gif(dir_ / "no_trailer.gif").frames.size(), 2u);
  fs::copy_file(dir_ / "t.gif", dir_ / "cut.gif");
  fs::resize_file(dir_ / "cut.gif", size - 6);  // inside the last frame's data
  EXPECT_THROW(asg::read_gif(dir_ / "cut.gif"), asg::Error);
}
