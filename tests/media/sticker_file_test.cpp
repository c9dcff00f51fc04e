// Sticker files by content: format detection, WebP (static and animated, 8-bit alpha), decoding through
// read_sticker whatever the extension says, and the decode limits. Files are written by the tests.
#include "asg/media/sticker_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "asg/error.h"
#include "asg/files.h"
#include "test_animation.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

using asg::testing::test_animation;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a data error";
  return "";
}

class StickerFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = asg::testing::make_temp_dir("sticker-file"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

}  // namespace

TEST(MediaFormat, IsDetectedByMagicBytes) {
  auto detect = [](const std::string& bytes) {
    return asg::detect_format(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  };
  EXPECT_EQ(detect("GIF89a\x10\x00"), asg::MediaFormat::Gif);
  EXPECT_EQ(detect("GIF87a"), asg::MediaFormat::Gif);
  EXPECT_EQ(detect(std::string("RIFF\x24\x00\x00\x00WEBPVP8L", 16)), asg::MediaFormat::WebP);
  EXPECT_EQ(detect("\x89PNG\r\n\x1a\n...."), asg::MediaFormat::Png);
  EXPECT_EQ(detect("\xFF\xD8\xFF\xE0"), asg::MediaFormat::Jpeg);
  EXPECT_EQ(detect(std::string("BM6\x00\x00\x00\x00\x00\x00\x00\x36\x00", 12)), asg::MediaFormat::Bmp);
  EXPECT_EQ(detect("BMW owners club"), asg::MediaFormat::Unknown);
  EXPECT_EQ(detect(std::string("\x00\x00\x00\x18" "ftypisom", 12)), asg::MediaFormat::Mp4);
  EXPECT_EQ(detect("\x1A\x45\xDF\xA3"), asg::MediaFormat::WebM);
  EXPECT_EQ(detect("hello, I am text"), asg::MediaFormat::Unknown);
  EXPECT_EQ(detect("RIFF\x24\x00\x00\x00WAVE"), asg::MediaFormat::Unknown);  // RIFF, but audio
  EXPECT_EQ(detect(""), asg::MediaFormat::Unknown);
  EXPECT_EQ(asg::format_from_extension("a/B.GIF"), asg::MediaFormat::Gif);
  EXPECT_EQ(asg::format_from_extension("x.jpeg"), asg::MediaFormat::Jpeg);
}

TEST_F(StickerFileTest, AnimatedWebPRoundTripsLosslessWithAlphaAndTiming) {
  const auto in = test_animation(5, 7, 4);  // odd sizes
  asg::write_webp(dir_ / "a.webp", in);
  const auto out = asg::read_webp(dir_ / "a.webp");
  EXPECT_EQ(out.width, 5);
  EXPECT_EQ(out.height, 7);
  EXPECT_EQ(out.loop_count, 0);
  ASSERT_EQ(out.frames.size(), 4u);
  for (size_t t = 0; t < 4; ++t) {
    EXPECT_EQ(out.frames[t].duration_ms, in.frames[t].duration_ms) << "frame " << t;
    EXPECT_EQ(out.frames[t].rgba, in.frames[t].rgba) << "frame " << t;  // lossless, colour under alpha 0 kept
  }
}

TEST_F(StickerFileTest, LossyWebPStaysCloseAndASingleFrameIsAStaticSticker) {
  // A smooth sticker (lossy VP8 is for those; per-pixel noise is what test_animation() is for): colour ramps,
  // opaque on the left, alpha falling off to the right.
  asg::Animation in;
  in.width = in.height = 16;
  asg::RgbaFrame frame;
  frame.rgba.resize(16 * 16 * 4);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) {
      uint8_t* p = &frame.rgba[(y * 16 + x) * 4];
      p[0] = static_cast<uint8_t>(x * 12);
      p[1] = static_cast<uint8_t>(y * 12);
      p[2] = 128;
      p[3] = x < 8 ? 255 : static_cast<uint8_t>(255 - (x - 8) * 30);
    }
  in.frames.push_back(frame);
  asg::write_webp(dir_ / "s.webp", in, /*lossless=*/false, /*quality=*/95);
  const auto out = asg::read_sticker(dir_ / "s.webp");
  EXPECT_EQ(out.format, asg::MediaFormat::WebP);
  ASSERT_EQ(out.animation.frames.size(), 1u);
  EXPECT_TRUE(out.has_alpha);
  double error = 0;
  const auto& a = in.frames[0].rgba;
  const auto& b = out.animation.frames[0].rgba;
  for (size_t i = 3; i < a.size(); i += 4) error += std::abs(int(a[i]) - int(b[i]));  // alpha is coded losslessly
  EXPECT_EQ(error, 0.0);
  double colour = 0;
  size_t n = 0;
  for (size_t i = 0; i < a.size(); i += 4) {
    if (a[i + 3] != 255) continue;
    colour += std::abs(int(a[i]) - int(b[i]));
    ++n;
  }
  ASSERT_GT(n, 0u);
  EXPECT_LT(colour / n, 12.0);
}

TEST_F(StickerFileTest, TheContentDecidesTheFormatAndALyingExtensionIsAWarning) {
  asg::write_gif(dir_ / "real.gif", test_animation(6, 6, 2));
  fs::copy_file(dir_ / "real.gif", dir_ / "lies.webp");
  const auto s = asg::read_sticker(dir_ / "lies.webp");
  EXPECT_EQ(s.format, asg::MediaFormat::Gif);
  EXPECT_EQ(s.animation.frames.size(), 2u);
  ASSERT_EQ(s.warnings.size(), 1u);
  EXPECT_EQ(s.warnings[0], (dir_ / "lies.webp").string() + ": the extension says webp but the content is gif; decoded as gif");
  EXPECT_TRUE(asg::read_sticker(dir_ / "real.gif").warnings.empty());
}

TEST_F(StickerFileTest, BadFilesGetOneLineReasons) {
  std::ofstream(dir_ / "empty.gif").close();
  EXPECT_EQ(error_of([&] { asg::read_sticker(dir_ / "empty.gif"); }), (dir_ / "empty.gif").string() + ": the file is empty");
  std::ofstream(dir_ / "text.gif") << "this is not an image\n";
  EXPECT_EQ(error_of([&] { asg::read_sticker(dir_ / "text.gif"); }),
            (dir_ / "text.gif").string() +
                ": not a sticker format this build can read (its first bytes match none of: gif, webp, png, jpeg, bmp, mp4, "
                "webm)");
  EXPECT_EQ(error_of([&] { asg::read_sticker(dir_ / "missing.webp"); }), (dir_ / "missing.webp").string() + ": cannot open the file");
  // Truncated files: the first half of a real GIF and WebP.
  for (const char* name : {"t.gif", "t.webp"}) {
    const fs::path whole = dir_ / (std::string("whole_") + name);
    if (fs::path(name).extension() == ".gif") asg::write_gif(whole, test_animation(12, 12, 3));
    else asg::write_webp(whole, test_animation(12, 12, 3));
    fs::copy_file(whole, dir_ / name);
    fs::resize_file(dir_ / name, fs::file_size(whole) / 2);
    const std::string e = error_of([&] { asg::read_sticker(dir_ / name); });
    EXPECT_EQ(e.rfind((dir_ / name).string() + ": ", 0), 0u) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  std::ofstream(dir_ / "x.png") << "\x89PNG\r\n\x1a\n rest";
  EXPECT_EQ(error_of([&] { asg::read_sticker(dir_ / "x.png"); }), (dir_ / "x.png").string() + ": malformed or truncated png (it does not end with an IEND chunk)");
  const char mp4_head[] = "\0\0\0\x18" "ftypmp42 and then nothing";
  std::ofstream(dir_ / "x.mp4", std::ios::binary).write(mp4_head, sizeof(mp4_head) - 1);
  EXPECT_EQ(error_of([&] { asg::read_sticker(dir_ / "x.mp4"); }).rfind((dir_ / "x.mp4").string() + ": cannot open the video", 0), 0u);
}

TEST_F(StickerFileTest, DecodeLimitsRefuseBombsNamingTheKey) {
  asg::write_gif(dir_ / "a.gif", test_animation(8, 8, 5));
  asg::write_webp(dir_ / "a.webp", test_animation(8, 8, 5));
  for (const char* name : {"a.gif", "a.webp"}) {
    SCOPED_TRACE(name);
    const fs::path file = dir_ / name;
    EXPECT_NO_THROW(asg::read_sticker(file, asg::DecodeLimits{64, 5, 5 * 64 * 4}));  // exactly at every limit
    EXPECT_NE(error_of([&] { asg::read_sticker(file, asg::DecodeLimits{63, 100, 1 << 20}); }).find("data.max_canvas_pixels"),
              std::string::npos);
    EXPECT_NE(error_of([&] { asg::read_sticker(file, asg::DecodeLimits{64, 4, 1 << 20}); }).find("data.max_frames"),
              std::string::npos);
    EXPECT_NE(error_of([&] { asg::read_sticker(file, asg::DecodeLimits{64, 100, 4 * 64 * 4}); }).find("data.max_decoded_bytes"),
              std::string::npos);
  }
}

TEST_F(StickerFileTest, ZeroDelayFramesSurviveAWebPRoundTrip) {
  auto in = test_animation(4, 4, 3);
  in.frames[1].duration_ms = 0;  // common in GIFs ("as fast as possible")
  asg::write_webp(dir_ / "z.webp", in);
  const auto out = asg::read_webp(dir_ / "z.webp");
  ASSERT_EQ(out.frames.size(), 3u);
  for (size_t t = 0; t < 3; ++t) EXPECT_EQ(out.frames[t].duration_ms, in.frames[t].duration_ms) << t;
}

namespace {
// A still image through OpenCV's encoder, from straight RGBA (what the decoders must give back).
std::vector<uint8_t> encode_still(const asg::RgbaFrame& frame, int w, int h, const std::string& ext, int channels) {
  cv::Mat rgba(h, w, CV_8UC4, const_cast<uint8_t*>(frame.rgba.data())), out;
  if (channels == 4) cv::cvtColor(rgba, out, cv::COLOR_RGBA2BGRA);
  else if (channels == 3) cv::cvtColor(rgba, out, cv::COLOR_RGBA2BGR);
  else cv::cvtColor(rgba, out, cv::COLOR_RGBA2GRAY);
  std::vector<uint8_t> bytes;
  EXPECT_TRUE(cv::imencode(ext, out, bytes));
  return bytes;
}
void write_bytes(const fs::path& file, const std::vector<uint8_t>& bytes) {
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
}  // namespace

TEST_F(StickerFileTest, StillPngBmpJpegDecodeToOneRgbaFrame) {
  const auto source = test_animation(7, 5, 1);  // odd sizes, graded alpha
  const auto& frame = source.frames[0];
  // PNG with alpha and BMP (3 channels): exact.
  write_bytes(dir_ / "s.png", encode_still(frame, 7, 5, ".png", 4));
  auto png = asg::read_sticker(dir_ / "s.png");
  EXPECT_EQ(png.format, asg::MediaFormat::Png);
  ASSERT_EQ(png.animation.frames.size(), 1u);
  EXPECT_EQ(png.animation.width, 7);
  EXPECT_EQ(png.animation.height, 5);
  EXPECT_EQ(png.animation.frames[0].rgba, frame.rgba);
  EXPECT_TRUE(png.has_alpha);
  write_bytes(dir_ / "s.bmp", encode_still(frame, 7, 5, ".bmp", 3));
  auto bmp = asg::read_sticker(dir_ / "s.bmp");
  EXPECT_EQ(bmp.format, asg::MediaFormat::Bmp);
  EXPECT_FALSE(bmp.has_alpha);
  for (size_t i = 0; i < frame.rgba.size(); ++i)
    EXPECT_EQ(bmp.animation.frames[0].rgba[i], i % 4 == 3 ? 255 : frame.rgba[i]) << i;
  // Greyscale PNG: grey replicated to RGB, opaque.
  write_bytes(dir_ / "g.png", encode_still(frame, 7, 5, ".png", 1));
  auto grey = asg::read_sticker(dir_ / "g.png").animation.frames[0].rgba;
  EXPECT_EQ(grey[0], grey[1]);
  EXPECT_EQ(grey[1], grey[2]);
  EXPECT_EQ(grey[3], 255);
  // JPEG: lossy, close; opaque.
  write_bytes(dir_ / "s.jpg", encode_still(frame, 7, 5, ".jpg", 3));
  auto jpeg = asg::read_sticker(dir_ / "s.jpg");
  EXPECT_EQ(jpeg.format, asg::MediaFormat::Jpeg);
  EXPECT_EQ(jpeg.animation.width, 7);
  EXPECT_FALSE(jpeg.has_alpha);
  // Bytes in memory decode the same as the file (how tar members are read).
  const std::string bytes = asg::read_text_file(dir_ / "s.png");
  auto from_memory = asg::decode_sticker({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "member/s.png");
  EXPECT_EQ(from_memory.animation.frames[0].rgba, frame.rgba);
}

TEST_F(StickerFileTest, StillImageLimitsComeFromTheHeaderBeforeDecoding) {
  const auto source = test_animation(40, 30, 1);
  for (const char* ext : {".png", ".bmp", ".jpg"}) {
    SCOPED_TRACE(ext);
    const fs::path file = dir_ / (std::string("big") + ext);
    write_bytes(file, encode_still(source.frames[0], 40, 30, ext, 3));
    EXPECT_NO_THROW(asg::read_sticker(file, asg::DecodeLimits{1200, 10, 1 << 20}));
    EXPECT_EQ(error_of([&] { asg::read_sticker(file, asg::DecodeLimits{1199, 10, 1 << 20}); }),
              file.string() + ": the canvas is 40x30 = 1200 pixels, over the limit of 1199 (data.max_canvas_pixels)");
  }
}

TEST_F(StickerFileTest, AHeaderClaimingAnEnormousCanvasIsRefusedWithoutOverflow) {
  // A PNG whose IHDR says 3251427943 x 3635383875 (the product overflows 64 bits; found by the fuzzer).
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                              0xC1, 0xCC, 0xDA, 0x67, 0xD8, 0xAF, 0x8E, 0x43, 8, 6, 0, 0, 0, 0, 0, 0, 0,
                              0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  write_bytes(dir_ / "huge.png", png);
  const std::string e = error_of([&] { asg::read_sticker(dir_ / "huge.png"); });
  EXPECT_NE(e.find("the canvas is 3251427943x3635383875 = "), std::string::npos) << e;
  EXPECT_NE(e.find("(data.max_canvas_pixels)"), std::string::npos) << e;
}

TEST_F(StickerFileTest, VideoDecodesEveryFrameOpaqueWithItsTiming) {
  // An MP4 written by OpenCV's own FFmpeg writer: 6 frames at 5 fps of 32x24 blocks of colour.
  const fs::path file = dir_ / "clip.mp4";
  {
    cv::VideoWriter writer(file.string(), cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), 5.0, cv::Size(32, 24));
    if (!writer.isOpened()) GTEST_SKIP() << "this OpenCV has no FFmpeg MP4 writer";
    for (int t = 0; t < 6; ++t) writer.write(cv::Mat(24, 32, CV_8UC3, cv::Scalar(40 * t, 200 - 30 * t, 100)));
  }
  const auto video = asg::read_sticker(file);
  EXPECT_EQ(video.format, asg::MediaFormat::Mp4);
  EXPECT_EQ(video.animation.width, 32);
  EXPECT_EQ(video.animation.height, 24);
  ASSERT_EQ(video.animation.frames.size(), 6u);
  EXPECT_FALSE(video.has_alpha);  // video has no alpha channel
  for (const auto& f : video.animation.frames) EXPECT_EQ(f.duration_ms, 200);
  // Colour survives (BGR -> RGB): frame 2 is R=100, G=140, B=80 within codec error.
  const uint8_t* p = &video.animation.frames[2].rgba[(12 * 32 + 16) * 4];
  EXPECT_NEAR(p[0], 100, 12);
  EXPECT_NEAR(p[1], 140, 12);
  EXPECT_NEAR(p[2], 80, 12);
  // The same bytes from memory go through a temporary file, and errors name the member, not that file.
  const std::string bytes = asg::read_text_file(file);
  EXPECT_EQ(asg::decode_sticker({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "shard/clip.mp4").animation.frames.size(), 6u);
  EXPECT_EQ(error_of([&] {
              asg::decode_sticker({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, "shard/clip.mp4",
                                  asg::DecodeLimits{100, 10, 1 << 20});
            }),
            "shard/clip.mp4: the canvas is 32x24 = 768 pixels, over the limit of 100 (data.max_canvas_pixels)");
}
