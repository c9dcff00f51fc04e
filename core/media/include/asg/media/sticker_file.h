// Sticker files: the format by content, decode limits, and decoding any supported format into
// full-canvas RGBA frames with their durations (asg/media/gif.h's Animation). No torch.
//
// - The format comes from the file's first bytes (magic numbers), never from its extension. A file whose
//   extension names another format is decoded by its real format, with a warning.
// - GIF through giflib (asg/media/gif.h); WebP, static or animated, with 8-bit alpha: libwebp's demuxer
//   and frame decoder, with the frames composited onto the full canvas here (blending and disposal,
//   bit-identical to libwebp's WebPAnimDecoder, which a test and the fuzzer check), so that a sample
//   decodes only the frames it shows and those they build on, from the last keyframe; PNG, JPEG and BMP through OpenCV's imdecode (8/16-bit, grey/grey+alpha/BGR/BGRA, one frame
//   of duration 0); MP4 and WebM through OpenCV's VideoCapture (FFmpeg). Video has no alpha channel:
//   its frames come out fully opaque.
// - DecodeLimits stop decompression bombs before the memory is spent: the canvas is checked from the
//   header, frames and decoded bytes as frames come out.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "asg/media/gif.h"
#include "asg/media/limits.h"
#include "asg/params.h"

namespace asg {

enum class MediaFormat { Gif, WebP, Png, Jpeg, Bmp, Mp4, WebM, Unknown };
const EnumNames<MediaFormat>& media_format_names();  // "gif", "webp", "png", "jpeg", "bmp", "mp4", "webm", "unknown"

// By magic bytes; `head` is the start of the file (16 bytes are enough for every format here).
MediaFormat detect_format(const uint8_t* head, size_t size);
// The format an extension names (".gif", ".webp", ".png", ".jpg"/".jpeg", ".bmp", ".mp4", ".webm"), case-insensitive.
MediaFormat format_from_extension(const std::filesystem::path& path);

struct DecodedSticker {
  Animation animation;
  MediaFormat format = MediaFormat::Unknown;
  bool has_alpha = false;             // some pixel of some frame is not fully opaque
  int64_t encoded_bytes = 0;          // the size of what was decoded (the file)
  std::vector<std::string> warnings;  // e.g. an extension that names another format
};

// Reads and decodes `path` by its content. asg::Error(Data) naming the file for an empty, truncated,
// unsupported or over-limit file (the message says which limit and its config key).
DecodedSticker read_sticker(const std::filesystem::path& path, const DecodeLimits& limits = {});
// The same from a file's bytes already in memory (a tar member); `name` stands for the file in errors
// and its extension is checked against the content. Video goes through a private temporary file.
DecodedSticker decode_sticker(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits = {});

// WebP, static or animated. Durations come from the frames' timestamps.
Animation read_webp(const std::filesystem::path& path, const DecodeLimits& limits = {});
Animation decode_webp(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits = {});
// Only the frames with needed[i] get pixels (the others come with empty rgba and their durations);
// libwebp still decodes every frame up to the last needed one, since later frames build on earlier ones.
Animation decode_webp(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits,
                      const std::vector<bool>& needed);
// The frames' durations (and the canvas and loop count) from the container, without decoding pixels.
Animation webp_timing(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits = {});
// Animated WebP (a single frame writes a one-frame animation), lossless by default, 8-bit alpha kept.
// quality: 0..100, the lossy quality or, lossless, the compression effort.
void write_webp(const std::filesystem::path& path, const Animation& animation, bool lossless = true, float quality = 75);

}  // namespace asg
