// Animated WebP decoding (asg::decode_webp, our compositor over libwebp's demuxer and frame decoder)
// against libwebp's own WebPAnimDecoder, on animations the test assembles frame by frame with libwebpmux
// so that every container feature is exercised: sub-rectangles, both blend modes, both disposal modes,
// lossy and lossless frames, opaque, binary and graded alpha. Frames must come out bit-identical, also
// when only some frames are asked for (the decoder then starts from the nearest keyframe).
#include <gtest/gtest.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include <random>

#include "asg/error.h"
#include "asg/media/sticker_file.h"
#include "webp_reference.h"

namespace {

std::span<const uint8_t> span_of(const std::vector<uint8_t>& v) { return {v.data(), v.size()}; }

struct MuxFrame {
  int x = 0, y = 0, width = 1, height = 1;  // x, y even (the container stores offsets / 2)
  bool blend = false;
  bool dispose_background = false;
  bool lossy = false;
  int duration_ms = 50;
  std::vector<uint8_t> rgba;
};

std::vector<uint8_t> assemble(int canvas_w, int canvas_h, const std::vector<MuxFrame>& frames) {
  WebPMux* mux = WebPMuxNew();
  WebPMuxAnimParams params{/*bgcolor=*/0, /*loop_count=*/0};
  EXPECT_EQ(WebPMuxSetAnimationParams(mux, &params), WEBP_MUX_OK);
  for (const auto& f : frames) {
    uint8_t* encoded = nullptr;
    const size_t size = f.lossy ? WebPEncodeRGBA(f.rgba.data(), f.width, f.height, f.width * 4, 70, &encoded)
                                : WebPEncodeLosslessRGBA(f.rgba.data(), f.width, f.height, f.width * 4, &encoded);
    EXPECT_GT(size, 0u);
    WebPMuxFrameInfo info{};
    info.bitstream = {encoded, size};
    info.x_offset = f.x;
    info.y_offset = f.y;
    info.duration = f.duration_ms;
    info.id = WEBP_CHUNK_ANMF;
    info.dispose_method = f.dispose_background ? WEBP_MUX_DISPOSE_BACKGROUND : WEBP_MUX_DISPOSE_NONE;
    info.blend_method = f.blend ? WEBP_MUX_BLEND : WEBP_MUX_NO_BLEND;
    EXPECT_EQ(WebPMuxPushFrame(mux, &info, /*copy_data=*/1), WEBP_MUX_OK);
    WebPFree(encoded);
  }
  EXPECT_EQ(WebPMuxSetCanvasSize(mux, canvas_w, canvas_h), WEBP_MUX_OK);
  WebPData out;
  WebPDataInit(&out);
  EXPECT_EQ(WebPMuxAssemble(mux, &out), WEBP_MUX_OK);
  std::vector<uint8_t> bytes(out.bytes, out.bytes + out.size);
  WebPDataClear(&out);
  WebPMuxDelete(mux);
  return bytes;
}

// A random frame: a rectangle inside the canvas, random modes, pixels with opaque, binary or graded alpha.
MuxFrame random_frame(std::mt19937& rng, int canvas_w, int canvas_h) {
  auto below = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  MuxFrame f;
  const bool full = below(3) == 0;
  f.x = full ? 0 : 2 * below(canvas_w / 2);
  f.y = full ? 0 : 2 * below(canvas_h / 2);
  f.width = full ? canvas_w : 1 + below(canvas_w - f.x);
  f.height = full ? canvas_h : 1 + below(canvas_h - f.y);
  f.blend = below(2);
  f.dispose_background = below(2);
  f.lossy = below(3) == 0;
  f.duration_ms = 10 * below(12);
  const int alpha_kind = below(3);  // 0 opaque, 1 binary, 2 graded
  f.rgba.resize(static_cast<size_t>(f.width) * f.height * 4);
  for (size_t p = 0; p < f.rgba.size(); p += 4) {
    for (int c = 0; c < 3; ++c) f.rgba[p + c] = static_cast<uint8_t>(rng());
    f.rgba[p + 3] = alpha_kind == 0 ? 255 : alpha_kind == 1 ? (below(2) ? 255 : 0) : static_cast<uint8_t>(rng());
  }
  return f;
}

TEST(WebPDecode, MatchesWebPAnimDecoderOnRandomAnimationsAndForAnySubsetOfFrames) {
  std::mt19937 rng(7);
  int keyframe_skips_exercised = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int w = 8 + static_cast<int>(rng() % 24), h = 8 + static_cast<int>(rng() % 24);
    const int count = 1 + static_cast<int>(rng() % 9);
    std::vector<MuxFrame> frames;
    for (int i = 0; i < count; ++i) frames.push_back(random_frame(rng, w, h));
    const auto bytes = assemble(w, h, frames);
    const auto reference = asg::testing::webp_reference_decode(span_of(bytes));
    ASSERT_TRUE(reference);
    const auto& expected = *reference;
    const auto got = asg::decode_webp(span_of(bytes), "r.webp");
    ASSERT_EQ(got.width, w);
    ASSERT_EQ(got.height, h);
    ASSERT_EQ(got.frames.size(), expected.frames.size()) << trial;
    const auto timing = asg::webp_timing(span_of(bytes), "r.webp");
    ASSERT_EQ(timing.frames.size(), expected.frames.size());
    for (size_t i = 0; i < expected.frames.size(); ++i) {
      ASSERT_EQ(got.frames[i].rgba, expected.frames[i].rgba) << "trial " << trial << " frame " << i;
      EXPECT_EQ(got.frames[i].duration_ms, expected.frames[i].duration_ms);
      EXPECT_EQ(timing.frames[i].duration_ms, expected.frames[i].duration_ms);
      EXPECT_TRUE(timing.frames[i].rgba.empty());
    }
    for (int subset = 0; subset < 4; ++subset) {
      std::vector<bool> needed(static_cast<size_t>(count));
      for (int i = 0; i < count; ++i) needed[i] = rng() % 3 == 0;
      const auto partial = asg::decode_webp(span_of(bytes), "r.webp", {}, needed);
      ASSERT_EQ(partial.frames.size(), expected.frames.size());
      for (int i = 0; i < count; ++i) {
        if (needed[i]) ASSERT_EQ(partial.frames[i].rgba, expected.frames[i].rgba) << "trial " << trial << " frame " << i;
        else EXPECT_TRUE(partial.frames[i].rgba.empty());
        EXPECT_EQ(partial.frames[i].duration_ms, expected.frames[i].duration_ms);
      }
      // A needed frame after a disposed-to-background one starts fresh: the subset skipped work.
      for (int i = 1; i < count; ++i)
        if (needed[i] && !needed[i - 1] && frames[i - 1].dispose_background) ++keyframe_skips_exercised;
    }
  }
  EXPECT_GT(keyframe_skips_exercised, 10);  // the random cases did reach the keyframe path
}

TEST(WebPDecode, FramesBeforeAKeyframeAreNotDecodedWhenNotNeeded) {
  // Six frames, each disposed to the background: each frame draws on a clear canvas, so each is a
  // keyframe. Corrupting frame 1's pixel data breaks a full decode but not one that skips frame 1.
  std::mt19937 rng(3);
  std::vector<MuxFrame> frames;
  for (int i = 0; i < 6; ++i) {
    MuxFrame f = random_frame(rng, 24, 20);
    f.dispose_background = true;
    frames.push_back(f);
  }
  const auto good = assemble(24, 20, frames);
  auto bad = good;
  {
    WebPData data{bad.data(), bad.size()};
    WebPDemuxer* demuxer = WebPDemux(&data);
    ASSERT_NE(demuxer, nullptr);
    WebPIterator it;
    ASSERT_TRUE(WebPDemuxGetFrame(demuxer, 2, &it));
    // Past the bitstream's header (its size stays readable), the entropy-coded data becomes garbage.
    const size_t at = static_cast<size_t>(it.fragment.bytes - bad.data());
    for (size_t k = it.fragment.size / 2; k < it.fragment.size; ++k) bad[at + k] = 0xFF;
    WebPDemuxReleaseIterator(&it);
    WebPDemuxDelete(demuxer);
  }
  try {
    asg::decode_webp(span_of(bad), "bad.webp");
    FAIL() << "the corrupted frame decoded";
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.webp: frame 1 is malformed or truncated"), std::string::npos) << e.what();
  }
  const std::vector<bool> needed{true, false, true, false, false, true};
  const auto partial = asg::decode_webp(span_of(bad), "bad.webp", {}, needed);
  const auto expected = *asg::testing::webp_reference_decode(span_of(good));
  for (int i : {0, 2, 5}) EXPECT_EQ(partial.frames[i].rgba, expected.frames[i].rgba) << i;
}

}  // namespace
