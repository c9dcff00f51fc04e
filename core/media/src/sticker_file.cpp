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
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <unistd.h>

#include "asg/error.h"
#include "asg/files.h"

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
  // By division: a header may claim 2^32 x 2^32, whose product overflows.
  if (width > limits.max_canvas_pixels / height)
    throw data_error(fmt::format("{}: the canvas is {}x{} = {} pixels, over the limit of {} (data.max_canvas_pixels)",
                                 path.string(), width, height, static_cast<double>(width) * static_cast<double>(height),
                                 limits.max_canvas_pixels));
}

// After frame `frames` (1-based count) of a width x height canvas came out.
void check_frames(const fs::path& path, int64_t frames, int64_t width, int64_t height, const DecodeLimits& limits) {
  if (frames > limits.max_frames)
    throw data_error(fmt::format("{}: more than {} frames (data.max_frames)", path.string(), limits.max_frames));
  // The canvas passed check_canvas, so width * height * 4 fits; frames times that is compared by division.
  if (frames > limits.max_decoded_bytes / (width * height * 4))
    throw data_error(fmt::format("{}: decoding needs more than {} bytes of RGBA frames by frame {} (data.max_decoded_bytes)",
                                 path.string(), limits.max_decoded_bytes, frames));
}

bool any_transparency(const Animation& a) {
  for (const auto& f : a.frames)
    for (size_t i = 3; i < f.rgba.size(); i += 4)
      if (f.rgba[i] != 255) return true;
  return false;
}

struct AnimEncoderDeleter {
  void operator()(WebPAnimEncoder* e) const { WebPAnimEncoderDelete(e); }
};
struct DemuxerDeleter {
  void operator()(WebPDemuxer* d) const { WebPDemuxDelete(d); }
};

// One frame of an animated WebP as the container describes it (ANMF), before any pixel is decoded.
struct WebPFrame {
  int x = 0, y = 0, width = 0, height = 0;
  bool has_alpha = false;
  bool blend = false;               // alpha-blend onto the canvas (else overwrite the rectangle)
  bool dispose_background = false;  // after showing, clear the rectangle to transparent
  int duration_ms = 0;
  WebPData fragment{};  // the frame's bitstream, inside the file's bytes
  // Whether the canvas before this frame is fully transparent or fully overwritten by it, so that the
  // frame can be rendered without any earlier one. The rule is libwebp's (WebPAnimDecoder), on which
  // the blending below depends: a keyframe is not blended.
  bool keyframe = false;
};

struct WebPContainer {
  std::unique_ptr<WebPDemuxer, DemuxerDeleter> demuxer;
  Animation header;  // canvas, loop count, frame durations; no pixels
  std::vector<WebPFrame> frames;
};

// Parses the container (RIFF chunks, no pixel data) and checks it against `limits`.
WebPContainer read_webp_container(std::span<const uint8_t> bytes, const fs::path& path, const DecodeLimits& limits) {
  WebPContainer c;
  // The canvas from the first chunk's header before the demuxer allocates anything for it.
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(bytes.data(), bytes.size(), &features) != VP8_STATUS_OK)
    throw data_error(fmt::format("{}: malformed or truncated WebP", path.string()));
  check_canvas(path, features.width, features.height, limits);
  WebPData data{bytes.data(), bytes.size()};
  c.demuxer.reset(WebPDemux(&data));  // refuses a file that ends early
  if (!c.demuxer) throw data_error(fmt::format("{}: malformed or truncated WebP", path.string()));
  WebPDemuxer* demuxer = c.demuxer.get();
  c.header.width = static_cast<int32_t>(WebPDemuxGetI(demuxer, WEBP_FF_CANVAS_WIDTH));
  c.header.height = static_cast<int32_t>(WebPDemuxGetI(demuxer, WEBP_FF_CANVAS_HEIGHT));
  c.header.loop_count = static_cast<int32_t>(WebPDemuxGetI(demuxer, WEBP_FF_LOOP_COUNT));
  check_canvas(path, c.header.width, c.header.height, limits);
  const uint32_t count = WebPDemuxGetI(demuxer, WEBP_FF_FRAME_COUNT);
  if (static_cast<int64_t>(count) > limits.max_frames)
    throw data_error(fmt::format("{}: {} frames, over the limit of {} (data.max_frames)", path.string(), count, limits.max_frames));
  if (count == 0) throw data_error(fmt::format("{}: WebP has no frames", path.string()));
  check_frames(path, count, c.header.width, c.header.height, limits);
  WebPIterator it;
  if (!WebPDemuxGetFrame(demuxer, 1, &it)) throw data_error(fmt::format("{}: malformed WebP", path.string()));
  const auto full_canvas = [&](const WebPFrame& f) { return f.width == c.header.width && f.height == c.header.height; };
  do {
    WebPFrame f;
    f.x = it.x_offset;
    f.y = it.y_offset;
    f.width = it.width;
    f.height = it.height;
    f.has_alpha = it.has_alpha;
    f.blend = it.blend_method == WEBP_MUX_BLEND;
    f.dispose_background = it.dispose_method == WEBP_MUX_DISPOSE_BACKGROUND;
    f.duration_ms = it.duration;  // 0 for a still image, as WebPAnimDecoder's timestamps give
    f.fragment = it.fragment;
    // The demuxer keeps rectangles inside the canvas; checked again because the decoding writes there.
    if (f.x < 0 || f.y < 0 || f.width <= 0 || f.height <= 0 || f.x + f.width > c.header.width || f.y + f.height > c.header.height)
      throw data_error(fmt::format("{}: frame {} lies outside the {}x{} canvas", path.string(), c.frames.size(), c.header.width,
                                   c.header.height));
    if (c.frames.empty()) {
      f.keyframe = true;
    } else {
      const WebPFrame& prev = c.frames.back();
      f.keyframe = ((!f.has_alpha || !f.blend) && full_canvas(f)) || (prev.dispose_background && (full_canvas(prev) || prev.keyframe));
    }
    c.header.frames.push_back(RgbaFrame{{}, f.duration_ms});
    c.frames.push_back(f);
  } while (WebPDemuxNextFrame(&it));
  WebPDemuxReleaseIterator(&it);
  return c;
}

// `src` (just decoded) over `dst` (the canvas before it), straight alpha, with libwebp's integer
// arithmetic (dst_factor = dst_a * (256 - src_a) >> 8, then a 24-bit reciprocal), so that frames come
// out bit-identical to WebPAnimDecoder's.
void blend_straight_alpha(uint8_t* src, const uint8_t* dst, int pixels) {
  for (int i = 0; i < pixels; ++i, src += 4, dst += 4) {
    const uint32_t src_a = src[3];
    if (src_a == 255) continue;
    if (src_a == 0) {
      std::memcpy(src, dst, 4);
      continue;
    }
    const uint32_t dst_factor = (dst[3] * (256 - src_a)) >> 8;
    const uint32_t alpha = src_a + dst_factor;
    const uint32_t scale = (1u << 24) / alpha;
    for (int ch = 0; ch < 3; ++ch) src[ch] = static_cast<uint8_t>(((src[ch] * src_a + dst[ch] * dst_factor) * scale) >> 24);
    src[3] = static_cast<uint8_t>(alpha);
  }
}

Animation decode_webp_frames(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits,
                             const std::vector<bool>* needed) {
  const fs::path path(name);
  WebPContainer container = read_webp_container(bytes, path, limits);
  Animation anim = std::move(container.header);
  const auto& frames = container.frames;
  const size_t count = frames.size();
  auto is_needed = [&](size_t i) { return !needed || (i < needed->size() && (*needed)[i]); };
  // A frame is decoded when a needed frame at or after it builds on it: every frame from the last
  // keyframe up to a needed one. Walking backwards, `from` is the keyframe the nearest needed frame
  // ahead starts from.
  std::vector<size_t> last_keyframe(count, 0);  // frame 0 is a keyframe
  for (size_t i = 1; i < count; ++i) last_keyframe[i] = frames[i].keyframe ? i : last_keyframe[i - 1];
  std::vector<bool> decode(count, false);
  size_t from = count;
  for (size_t i = count; i-- > 0;) {
    if (is_needed(i)) from = std::min(from, last_keyframe[i]);
    decode[i] = i >= from;
    if (i == from) from = count;
  }

  const int W = anim.width, H = anim.height;
  const size_t stride = static_cast<size_t>(W) * 4, canvas_bytes = stride * static_cast<size_t>(H);
  std::vector<uint8_t> canvas(canvas_bytes), disposed(canvas_bytes);  // the frame being built; the one before it, disposed
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) throw internal_error("libwebp: incompatible WebPDecoderConfig");
  config.options.use_threads = 0;
  config.output.colorspace = MODE_RGBA;  // straight (not premultiplied) alpha, as Animation holds it
  config.output.is_external_memory = 1;
  for (size_t i = 0; i < count; ++i) {
    const WebPFrame& f = frames[i];
    if (!decode[i]) continue;
    if (f.keyframe) std::fill(canvas.begin(), canvas.end(), 0);
    else canvas = disposed;
    WebPBitstreamFeatures features;
    if (WebPGetFeatures(f.fragment.bytes, f.fragment.size, &features) != VP8_STATUS_OK || features.width != f.width ||
        features.height != f.height)
      throw data_error(fmt::format("{}: frame {} is malformed or truncated", path.string(), i));
    const size_t offset = static_cast<size_t>(f.y) * stride + static_cast<size_t>(f.x) * 4;
    config.output.u.RGBA.rgba = canvas.data() + offset;
    config.output.u.RGBA.stride = static_cast<int>(stride);
    config.output.u.RGBA.size = canvas_bytes - offset;  // never past the canvas, whatever the bitstream says
    if (WebPDecode(f.fragment.bytes, f.fragment.size, &config) != VP8_STATUS_OK)
      throw data_error(fmt::format("{}: frame {} is malformed or truncated", path.string(), i));
    if (i > 0 && f.blend && !f.keyframe) {
      // Blend with the canvas before the frame, except where the previous frame's rectangle was just
      // cleared: there the canvas is transparent and libwebp leaves the decoded pixels as they are.
      const WebPFrame& prev = frames[i - 1];
      for (int y = f.y; y < f.y + f.height; ++y) {
        auto blend_span = [&](int x0, int x1) {
          if (x1 <= x0) return;
          const size_t at = static_cast<size_t>(y) * stride + static_cast<size_t>(x0) * 4;
          blend_straight_alpha(canvas.data() + at, disposed.data() + at, x1 - x0);
        };
        if (!prev.dispose_background || y < prev.y || y >= prev.y + prev.height) {
          blend_span(f.x, f.x + f.width);
        } else {
          blend_span(f.x, std::min(f.x + f.width, prev.x));
          blend_span(std::max(f.x, prev.x + prev.width), f.x + f.width);
        }
      }
    }
    if (is_needed(i)) anim.frames[i].rgba = canvas;
    // What the next frame starts from, when it is decoded and builds on this one.
    if (i + 1 < count && decode[i + 1] && !frames[i + 1].keyframe) {
      disposed = canvas;
      if (f.dispose_background)
        for (int y = f.y; y < f.y + f.height; ++y)
          std::fill_n(disposed.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(y) * stride + static_cast<size_t>(f.x) * 4),
                      static_cast<size_t>(f.width) * 4, 0);
    }
  }
  return anim;
}

}  // namespace

Animation read_webp(const fs::path& path, const DecodeLimits& limits) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  return decode_webp(bytes, path.string(), limits);
}

Animation decode_webp(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits) {
  return decode_webp_frames(bytes, name, limits, nullptr);
}

Animation decode_webp(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits,
                      const std::vector<bool>& needed) {
  return decode_webp_frames(bytes, name, limits, &needed);
}

Animation webp_timing(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits) {
  return read_webp_container(bytes, fs::path(name), limits).header;
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

namespace {

// The canvas of a still image from its header, so the limit is checked before OpenCV allocates it.
// Returns {0, 0} when the header does not say (OpenCV then decides, and its own limit applies).
std::pair<int64_t, int64_t> still_image_size(std::span<const uint8_t> b, MediaFormat format) {
  auto be32 = [&](size_t i) { return int64_t{b[i]} << 24 | int64_t{b[i + 1]} << 16 | int64_t{b[i + 2]} << 8 | b[i + 3]; };
  auto le32 = [&](size_t i) {
    return static_cast<int64_t>(static_cast<int32_t>(uint32_t{b[i]} | uint32_t{b[i + 1]} << 8 | uint32_t{b[i + 2]} << 16 |
                                                     uint32_t{b[i + 3]} << 24));
  };
  if (format == MediaFormat::Png && b.size() >= 24) return {be32(16), be32(20)};  // IHDR: width, height
  if (format == MediaFormat::Bmp && b.size() >= 26) return {std::abs(le32(18)), std::abs(le32(22))};  // top-down: < 0
  if (format == MediaFormat::Jpeg) {
    // Walk the marker segments to the first start-of-frame (SOF0..SOF15 except DHT/JPG/DAC).
    size_t i = 2;
    while (i + 9 < b.size()) {
      if (b[i] != 0xFF) return {0, 0};
      const uint8_t marker = b[i + 1];
      if (marker == 0xFF) { ++i; continue; }  // fill byte
      const size_t length = size_t{b[i + 2]} << 8 | b[i + 3];
      if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)
        return {int64_t{b[i + 7]} << 8 | b[i + 8], int64_t{b[i + 5]} << 8 | b[i + 6]};
      i += 2 + length;
    }
  }
  return {0, 0};
}

// PNG, JPEG, BMP: one frame through OpenCV (8- or 16-bit; grey, grey+alpha, BGR, BGRA).
Animation decode_still(std::span<const uint8_t> bytes, const fs::path& path, MediaFormat format, const DecodeLimits& limits) {
  const auto [width, height] = still_image_size(bytes, format);
  if (width != 0 || height != 0) check_canvas(path, width, height, limits);
  // Truncated files are the common case of a bad still: refuse them here, before the codec libraries
  // print their own complaints to stderr. A whole PNG ends with its IEND chunk, a whole JPEG with EOI.
  static constexpr uint8_t kIend[] = {'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  if (format == MediaFormat::Png &&
      (bytes.size() < 8 + 12 || std::memcmp(bytes.data() + bytes.size() - sizeof(kIend), kIend, sizeof(kIend)) != 0))
    throw data_error(fmt::format("{}: malformed or truncated png (it does not end with an IEND chunk)", path.string()));
  if (format == MediaFormat::Jpeg && (bytes.size() < 4 || bytes[bytes.size() - 2] != 0xFF || bytes[bytes.size() - 1] != 0xD9))
    throw data_error(fmt::format("{}: malformed or truncated jpeg (it does not end with an EOI marker)", path.string()));
  const cv::Mat encoded(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<uint8_t*>(bytes.data()));
  cv::Mat image;
  try {
    image = cv::imdecode(encoded, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw data_error(fmt::format("{}: malformed {}: {}", path.string(), media_format_names().name(format), e.err));
  }
  if (image.empty()) throw data_error(fmt::format("{}: malformed or truncated {}", path.string(), media_format_names().name(format)));
  check_canvas(path, image.cols, image.rows, limits);
  check_frames(path, 1, image.cols, image.rows, limits);
  if (image.depth() == CV_16U) image.convertTo(image, CV_8U, 1.0 / 257.0);
  else if (image.depth() != CV_8U) image.convertTo(image, CV_8U);
  cv::Mat rgba;
  switch (image.channels()) {
    case 1: cv::cvtColor(image, rgba, cv::COLOR_GRAY2RGBA); break;
    case 2: {  // grey + alpha: OpenCV has no conversion code for it
      std::vector<cv::Mat> planes;
      cv::split(image, planes);
      cv::merge(std::vector<cv::Mat>{planes[0], planes[0], planes[0], planes[1]}, rgba);
      break;
    }
    case 3: cv::cvtColor(image, rgba, cv::COLOR_BGR2RGBA); break;
    case 4: cv::cvtColor(image, rgba, cv::COLOR_BGRA2RGBA); break;
    default:
      throw data_error(fmt::format("{}: {} channels; valid: 1 to 4", path.string(), image.channels()));
  }
  Animation anim;
  anim.width = rgba.cols;
  anim.height = rgba.rows;
  anim.loop_count = 0;
  anim.frames.push_back(RgbaFrame{std::vector<uint8_t>(rgba.data, rgba.data + rgba.total() * 4), 0});
  return anim;
}

// MP4/WebM through OpenCV's FFmpeg backend. Video has no alpha: every pixel comes out opaque. Each
// frame lasts until the next one's timestamp; the last one 1/fps.
Animation decode_video(const fs::path& path, const DecodeLimits& limits) {
  // FFmpeg logs its own complaints about bad files to stderr; the error thrown here says it in one line.
  // OpenCV reads this variable once, when its FFmpeg backend starts; a value the user set wins.
  static std::once_flag quiet_ffmpeg;
  std::call_once(quiet_ffmpeg, [] { setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", 0); });
  cv::VideoCapture capture;
  try {
    capture.open(path.string(), cv::CAP_FFMPEG);
  } catch (const cv::Exception& e) {
    throw data_error(fmt::format("{}: cannot open the video: {}", path.string(), e.err));
  }
  if (!capture.isOpened())
    throw data_error(fmt::format("{}: cannot open the video (malformed, truncated, or no FFmpeg codec for it)", path.string()));
  const auto width = static_cast<int64_t>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  const auto height = static_cast<int64_t>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  check_canvas(path, width, height, limits);
  const double fps = capture.get(cv::CAP_PROP_FPS);
  const int nominal_ms = fps > 0 ? static_cast<int>(std::lround(1000.0 / fps)) : 100;
  Animation anim;
  anim.width = static_cast<int32_t>(width);
  anim.height = static_cast<int32_t>(height);
  anim.loop_count = 0;
  std::vector<double> timestamps_ms;
  cv::Mat bgr, rgba;
  while (true) {
    const double at_ms = capture.get(cv::CAP_PROP_POS_MSEC);
    bool got = false;
    try {
      got = capture.read(bgr);
    } catch (const cv::Exception& e) {
      throw data_error(fmt::format("{}: frame {} is malformed: {}", path.string(), anim.frames.size(), e.err));
    }
    if (!got || bgr.empty()) break;
    check_frames(path, static_cast<int64_t>(anim.frames.size()) + 1, width, height, limits);
    if (bgr.cols != width || bgr.rows != height)
      throw data_error(fmt::format("{}: frame {} is {}x{} in a {}x{} video", path.string(), anim.frames.size(), bgr.cols,
                                   bgr.rows, width, height));
    cv::cvtColor(bgr, rgba, bgr.channels() == 1 ? cv::COLOR_GRAY2RGBA : cv::COLOR_BGR2RGBA);
    anim.frames.push_back(RgbaFrame{std::vector<uint8_t>(rgba.data, rgba.data + rgba.total() * 4), nominal_ms});
    // POS_MSEC before a read is the timestamp of the frame that read returns.
    timestamps_ms.push_back(at_ms);
  }
  if (anim.frames.empty()) throw data_error(fmt::format("{}: the video has no decodable frames", path.string()));
  for (size_t i = 0; i + 1 < timestamps_ms.size(); ++i) {
    const double gap = timestamps_ms[i + 1] - timestamps_ms[i];
    if (gap > 0) anim.frames[i].duration_ms = static_cast<int32_t>(std::lround(gap));
  }
  return anim;
}

// Video decoding needs a file: bytes from elsewhere (a tar member) go through a private temporary one.
Animation decode_video_bytes(std::span<const uint8_t> bytes, const fs::path& name, MediaFormat format, const DecodeLimits& limits) {
  std::error_code ec;
  const fs::path dir = fs::temp_directory_path(ec);
  if (ec) throw data_error(fmt::format("{}: no temporary directory to decode the video in: {}", name.string(), ec.message()));
  // mkstemps replaces the six X with a unique name; the suffix keeps the container's extension.
  std::string pattern = (dir / "asg-video-XXXXXX").string() + (format == MediaFormat::Mp4 ? ".mp4" : ".webm");
  const int fd = mkstemps(pattern.data(), format == MediaFormat::Mp4 ? 4 : 5);
  if (fd < 0) throw data_error(fmt::format("{}: cannot create a temporary file to decode the video", name.string()));
  const fs::path temporary(pattern);
  struct Remove {
    fs::path file;
    ~Remove() {
      std::error_code ignored;
      fs::remove(file, ignored);
    }
  } remove{temporary};
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  if (written != bytes.size()) throw data_error(fmt::format("{}: cannot write the temporary video file", name.string()));
  try {
    return decode_video(temporary, limits);
  } catch (const Error& e) {
    // Name the member, not the temporary file.
    std::string message = e.what();
    const std::string temp = temporary.string();
    if (const auto at = message.find(temp); at != std::string::npos) message.replace(at, temp.size(), name.string());
    throw data_error(message);
  }
}

MediaFormat checked_format(std::span<const uint8_t> head, const fs::path& path, std::vector<std::string>& warnings) {
  if (head.empty()) throw data_error(fmt::format("{}: the file is empty", path.string()));
  const MediaFormat format = detect_format(head.data(), std::min<size_t>(head.size(), 16));
  if (format == MediaFormat::Unknown)
    throw data_error(fmt::format("{}: not a sticker format this build can read (its first bytes match none of: gif, webp, "
                                 "png, jpeg, bmp, mp4, webm)",
                                 path.string()));
  const MediaFormat named = format_from_extension(path);
  if (named != MediaFormat::Unknown && named != format)
    warnings.push_back(fmt::format("{}: the extension says {} but the content is {}; decoded as {}", path.string(),
                                   media_format_names().name(named), media_format_names().name(format),
                                   media_format_names().name(format)));
  return format;
}

DecodedSticker finish(Animation animation, MediaFormat format, std::vector<std::string> warnings) {
  DecodedSticker out;
  out.animation = std::move(animation);
  out.format = format;
  out.has_alpha = any_transparency(out.animation);
  out.warnings = std::move(warnings);
  return out;
}

}  // namespace

DecodedSticker decode_sticker(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits) {
  std::vector<std::string> warnings;
  const MediaFormat format = checked_format(bytes, name, warnings);
  DecodedSticker out;
  switch (format) {
    case MediaFormat::Gif: out = finish(decode_gif(bytes, name, limits), format, std::move(warnings)); break;
    case MediaFormat::WebP: out = finish(decode_webp(bytes, name, limits), format, std::move(warnings)); break;
    case MediaFormat::Mp4:
    case MediaFormat::WebM: out = finish(decode_video_bytes(bytes, name, format, limits), format, std::move(warnings)); break;
    default: out = finish(decode_still(bytes, name, format, limits), format, std::move(warnings)); break;
  }
  out.encoded_bytes = static_cast<int64_t>(bytes.size());
  return out;
}

DecodedSticker read_sticker(const fs::path& path, const DecodeLimits& limits) {
  std::vector<uint8_t> head(16);
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw data_error(fmt::format("{}: cannot open the file", path.string()));
    in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
  }
  std::vector<std::string> warnings;
  const MediaFormat format = checked_format(head, path, warnings);
  // Video is read by FFmpeg from the file itself; everything else is decoded from memory.
  if (format == MediaFormat::Mp4 || format == MediaFormat::WebM) {
    DecodedSticker out = finish(decode_video(path, limits), format, std::move(warnings));
    std::error_code ec;
    out.encoded_bytes = static_cast<int64_t>(fs::file_size(path, ec));
    return out;
  }
  return decode_sticker(read_bytes(path), path.string(), limits);
}

}  // namespace asg
