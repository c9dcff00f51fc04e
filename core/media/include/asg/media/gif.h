// Animated GIF encode/decode with transparency (giflib). No torch: frames are 8-bit RGBA buffers.
//
// Writing: every frame is a full canvas. The palette is chosen per sticker: one exact global palette when
// the whole sticker has at most 255 distinct opaque colours (flat stickers); else exact local palettes
// when every frame has at most 255 (lossless); else one 128-colour median-cut palette over all frames
// (giflib's quantizer), so a colour maps to the same entry in every frame and does not flicker.
// Pixels with alpha < 128 become the transparent index (GIF alpha is 1-bit). Frames use
// disposal "restore to background", so transparent areas stay transparent in browsers.
//
// Reading composites each frame onto an RGBA canvas honouring sub-rectangles, the transparent index
// and the disposal modes, so frames come back exactly as a browser would show them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "asg/media/limits.h"

namespace asg {

struct RgbaFrame {
  std::vector<uint8_t> rgba;  // width * height * 4, row-major
  int32_t duration_ms = 100;
};

struct Animation {
  int32_t width = 0;
  int32_t height = 0;
  int32_t loop_count = 0;  // 0 = forever; -1 = no loop extension (play once)
  std::vector<RgbaFrame> frames;
};

// asg::Error(Data) naming the file on any failure, including a file over `limits`.
void write_gif(const std::filesystem::path& path, const Animation& animation);
Animation read_gif(const std::filesystem::path& path, const DecodeLimits& limits = {});
// The same from a file's bytes already in memory (e.g. a tar member); `name` is what errors call it.
Animation decode_gif(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits = {});
// Only the frames with needed[i] get pixels (the others come with empty rgba and their durations). The
// compressed data of an unneeded frame is skipped, not decoded, when its disposal restores what was under
// it (background, previous): nothing after it can show its pixels.
Animation decode_gif(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits,
                     const std::vector<bool>& needed);
// The frames' durations (and the canvas and loop count) without decoding any pixels.
Animation gif_timing(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits = {});

}  // namespace asg
