#include "asg/media/sticker_file.h"

#include <fmt/format.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>

#include "asg/error.h"
#include "asg/util.h"

namespace asg {

namespace fs = std::filesystem;

const EnumNames<MediaFormat>& media_format_names() {
  static const EnumNames<MediaFormat> names{{MediaFormat::Gif, "gif"},   {MediaFormat::WebP, "webp"},
                                            {MediaFormat::Png, "png"},   {MediaFormat::Jpeg, "jpeg"},
                                            {MediaFormat::Bmp, "bmp"},   {MediaFormat::Mp4, "mp4"},
                                            {MediaFormat::WebM, "webm"}, {MediaFormat::Unknown, "unknown"}};
  return names;
}

MediaFormat detect_format(const uint8_t* head, size_t size) {
  auto starts = [&](size_t offset, const char* magic) {
    const size_t n = std::strlen(magic);
    return size >= offset + n && std::memcmp(head + offset, magic, n) == 0;
  };
  if (starts(0, "GIF87a") || starts(0, "GIF89a")) return MediaFormat::Gif;
  if (starts(0, "RIFF") && starts(8, "WEBP")) return MediaFormat::WebP;
  if (starts(0, "\x89PNG\r\n\x1a\n")) return MediaFormat::Png;
  if (size >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) return MediaFormat::Jpeg;
  // "BM", the file size, then two reserved 16-bit fields that are zero (so text starting "BM" is not one).
  if (starts(0, "BM") && size >= 10 && head[6] == 0 && head[7] == 0 && head[8] == 0 && head[9] == 0) return MediaFormat::Bmp;
  if (starts(4, "ftyp")) return MediaFormat::Mp4;
  if (size >= 4 && head[0] == 0x1A && head[1] == 0x45 && head[2] == 0xDF && head[3] == 0xA3) return MediaFormat::WebM;
  return MediaFormat::Unknown;
}

MediaFormat format_from_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".gif") return MediaFormat::Gif;
  if (ext == ".webp") return MediaFormat::WebP;
  if (ext == ".png") return MediaFormat::Png;
  if (ext == ".jpg" || ext == ".jpeg") return MediaFormat::Jpeg;
  if (ext == ".bmp") return MediaFormat::Bmp;
  if (ext == ".mp4") return MediaFormat::Mp4;
  if (ext == ".webm") return MediaFormat::WebM;
  return MediaFormat::Unknown;
}

namespace {

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw data_error(fmt::format("{}: cannot open the file", path.string()));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw data_error(fmt::format("{}: cannot read the file", path.string()));
  return bytes;
}

void check_canvas(const fs::path& path, int64_t width, int64_t height, const DecodeLimits& limits) {
  if (width <= 0 || height <= 0)
    throw data_error(fmt::format("{}: the canvas is {}x{}, which has no pixels", path.string(), width, height));
  if (width * height > limits.max_canvas_pixels)
    throw data_error(fmt::format("{}: the canvas is {}x{} = {} pixels, over the limit of {} (data.max_canvas_pixels)",
                                 path.string(), width, height, width * height, limits.max_canvas_pixels));
}

// After frame `frames` (1-based count) of a width x height canvas came out.
void check_frames(const fs::path& path, int64_t frames, int64_t width, int64_t height, const DecodeLimits& limits) {
  if (frames > limits.max_frames)
    throw data_error(fmt::format("{}: more than {} frames (data.max_frames)", path.string(), limits.max_frames));
  const int64_t bytes = frames * width * height * 4;
  if (bytes > limits.max_decoded_bytes)
    throw data_error(fmt::format("{}: decoding needs more than {} bytes of RGBA frames by frame {} (data.max_decoded_bytes)",
                                 path.string(), limits.max_decoded_bytes, frames));
}

bool any_transparency(const Animation& a) {
  for (const auto& f : a.frames)
    for (size_t i = 3; i < f.rgba.size(); i += 4)
      if (f.rgba[i] != 255) return true;
  return false;
}

struct AnimDecoderDeleter {
  void operator()(WebPAnimDecoder* d) const { WebPAnimDecoderDelete(d); }
};
struct AnimEncoderDeleter {
  void operator()(WebPAnimEncoder* e) const { WebPAnimEncoderDelete(e); }
};

}  // namespace

Animation read_webp(const fs::path& path, const DecodeLimits& limits) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  WebPData data{bytes.data(), bytes.size()};
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) throw internal_error("libwebp: incompatible WebPAnimDecoderOptions");
  options.color_mode = MODE_RGBA;  // straight (not premultiplied) alpha, as Animation holds it
  options.use_threads = 0;
  // The canvas from the header first: the decoder allocates it.
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(bytes.data(), bytes.size(), &features) != VP8_STATUS_OK)
    throw data_error(fmt::format("{}: malformed or truncated WebP", path.string()));
  check_canvas(path, features.width, features.height, limits);
  std::unique_ptr<WebPAnimDecoder, AnimDecoderDeleter> decoder(WebPAnimDecoderNew(&data, &options));
  if (!decoder) throw data_error(fmt::format("{}: malformed or truncated WebP", path.string()));
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(decoder.get(), &info)) throw data_error(fmt::format("{}: malformed WebP", path.string()));
  check_canvas(path, info.canvas_width, info.canvas_height, limits);
  if (static_cast<int64_t>(info.frame_count) > limits.max_frames)
    throw data_error(fmt::format("{}: {} frames, over the limit of {} (data.max_frames)", path.string(), info.frame_count,
                                 limits.max_frames));
  Animation anim;
  anim.width = static_cast<int32_t>(info.canvas_width);
  anim.height = static_cast<int32_t>(info.canvas_height);
  anim.loop_count = static_cast<int32_t>(info.loop_count);
  const size_t frame_bytes = static_cast<size_t>(anim.width) * anim.height * 4;
  int previous_ms = 0;
  while (WebPAnimDecoderHasMoreFrames(decoder.get())) {
    uint8_t* pixels = nullptr;
    int timestamp_ms = 0;
    if (!WebPAnimDecoderGetNext(decoder.get(), &pixels, &timestamp_ms))
      throw data_error(fmt::format("{}: frame {} is malformed or truncated", path.string(), anim.frames.size()));
    check_frames(path, static_cast<int64_t>(anim.frames.size()) + 1, anim.width, anim.height, limits);
    // A frame's duration is the time to the next frame's timestamp: this one's minus the previous one's.
    anim.frames.push_back(RgbaFrame{std::vector<uint8_t>(pixels, pixels + frame_bytes), timestamp_ms - previous_ms});
    previous_ms = timestamp_ms;
  }
  if (anim.frames.empty()) throw data_error(fmt::format("{}: WebP has no frames", path.string()));
  return anim;
}

void write_webp(const fs::path& path, const Animation& animation, bool lossless, float quality) {
  if (animation.frames.empty()) throw internal_error("write_webp: no frames");
  WebPAnimEncoderOptions encoder_options;
  if (!WebPAnimEncoderOptionsInit(&encoder_options)) throw internal_error("libwebp: incompatible WebPAnimEncoderOptions");
  encoder_options.anim_params.loop_count = std::max(0, animation.loop_count);
  std::unique_ptr<WebPAnimEncoder, AnimEncoderDeleter> encoder(
      WebPAnimEncoderNew(animation.width, animation.height, &encoder_options));
  if (!encoder) throw internal_error("libwebp: cannot create an animation encoder");
  WebPConfig config;
  if (!WebPConfigInit(&config)) throw internal_error("libwebp: incompatible WebPConfig");
  config.lossless = lossless ? 1 : 0;
  config.quality = quality;
  config.exact = 1;  // keep the colour under transparent pixels (round trips compare it)
  int timestamp_ms = 0;
  for (const auto& frame : animation.frames) {
    WebPPicture picture;
    if (!WebPPictureInit(&picture)) throw internal_error("libwebp: incompatible WebPPicture");
    picture.use_argb = 1;
    picture.width = animation.width;
    picture.height = animation.height;
    if (!WebPPictureImportRGBA(&picture, frame.rgba.data(), animation.width * 4)) {
      WebPPictureFree(&picture);
      throw internal_error("libwebp: out of memory importing a frame");
    }
    const bool added = WebPAnimEncoderAdd(encoder.get(), &picture, timestamp_ms, &config);
    WebPPictureFree(&picture);
    if (!added)
      throw data_error(fmt::format("{}: cannot encode frame: {}", path.string(), WebPAnimEncoderGetError(encoder.get())));
    timestamp_ms += frame.duration_ms;
  }
  WebPAnimEncoderAdd(encoder.get(), nullptr, timestamp_ms, nullptr);  // the end time of the last frame
  WebPData out;
  WebPDataInit(&out);
  if (!WebPAnimEncoderAssemble(encoder.get(), &out))
    throw data_error(fmt::format("{}: cannot assemble the animation: {}", path.string(), WebPAnimEncoderGetError(encoder.get())));
  std::string bytes(reinterpret_cast<const char*>(out.bytes), out.size);
  WebPDataClear(&out);
  write_text_file_atomic(path, bytes);
}

DecodedSticker read_sticker(const fs::path& path, const DecodeLimits& limits) {
  DecodedSticker out;
  uint8_t head[16] = {0};
  size_t got = 0;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw data_error(fmt::format("{}: cannot open the file", path.string()));
    in.read(reinterpret_cast<char*>(head), sizeof(head));
    got = static_cast<size_t>(in.gcount());
  }
  if (got == 0) throw data_error(fmt::format("{}: the file is empty", path.string()));
  out.format = detect_format(head, got);
  const MediaFormat named = format_from_extension(path);
  if (out.format == MediaFormat::Unknown)
    throw data_error(fmt::format("{}: not a sticker format this build can read (its first bytes match none of: gif, webp, "
                                 "png, jpeg, bmp, mp4, webm)",
                                 path.string()));
  if (named != MediaFormat::Unknown && named != out.format)
    out.warnings.push_back(fmt::format("{}: the extension says {} but the content is {}; decoded as {}", path.string(),
                                       media_format_names().name(named), media_format_names().name(out.format),
                                       media_format_names().name(out.format)));
  switch (out.format) {
    case MediaFormat::Gif: out.animation = read_gif(path, limits); break;
    case MediaFormat::WebP: out.animation = read_webp(path, limits); break;
    default:
      throw data_error(fmt::format("{}: {} files are recognised but not decoded by this build yet (supported: gif, webp)",
                                   path.string(), media_format_names().name(out.format)));
  }
  out.has_alpha = any_transparency(out.animation);
  return out;
}

}  // namespace asg
