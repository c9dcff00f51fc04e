#include "asg/media/transform.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/media/sticker_file.h"
#include "asg/files.h"

#include <fstream>

namespace asg {

const EnumNames<FrameSelection>& frame_selection_names() {
  static const EnumNames<FrameSelection> names{{FrameSelection::Uniform, "uniform"},
                                               {FrameSelection::Fps, "fps"},
                                               {FrameSelection::Luv, "luv"},
                                               {FrameSelection::KMeans, "kmeans"}};
  return names;
}
const EnumNames<ResizeMode>& resize_mode_names() {
  static const EnumNames<ResizeMode> names{{ResizeMode::Stretch, "stretch"}, {ResizeMode::Letterbox, "letterbox"}};
  return names;
}
const EnumNames<ResizeFilter>& resize_filter_names() {
  static const EnumNames<ResizeFilter> names{
      {ResizeFilter::Auto, "auto"}, {ResizeFilter::Area, "area"}, {ResizeFilter::Bicubic, "bicubic"}};
  return names;
}

std::vector<ParamSpec> transform_params(int64_t default_size, int64_t default_frames) {
  return {
      int_param("frames", default_frames, "frames per sample (with random_frames: the padded length, = its max)").range(1, 256),
      int_param("height", default_size, "sample height in pixels").range(8, 4096),
      int_param("width", default_size, "sample width in pixels").range(8, 4096),
      enum_param("frame_selection", FrameSelection::Uniform, frame_selection_names(),
                 "how frames are chosen: evenly spaced, resampled at `fps` by the frame delays, LUV-difference keyframes, "
                 "k-means keyframes"),
      float_param("fps", 8.0, "sampling rate for frame_selection = \"fps\"").range(0.1, 120),
      bool_param("pad_short", false, "pad a short selection with masked copies of its last frame instead of repeating frames"),
      int_list_param("random_frames", {0, 0}, "RDTF: [kmin, kmax] random frames per training sample, redrawn every "
                     "epoch, padded and masked to kmax (= frames); evaluation reads whole clips; [0, 0] = off").range(0, 256).length(2, 2),
      string_param("alpha", "composite", "\"composite\" onto `background` (alpha becomes 1) or \"keep\" it").one_of({"composite", "keep"}),
      int_list_param("background", {255, 255, 255}, "RGB background for alpha = \"composite\" and letterbox borders").range(0, 255).length(3, 3),
      enum_param("resize", ResizeMode::Stretch, resize_mode_names(), "\"stretch\" to the size (aspect not kept, as the paper) or \"letterbox\""),
      enum_param("resize_filter", ResizeFilter::Auto, resize_filter_names(),
                 "\"auto\": area averaging when shrinking, bicubic when enlarging; or force one"),
  };
}

SampleTransform SampleTransform::for_evaluation() const {
  SampleTransform t = *this;
  t.random_min = t.random_max = 0;
  return t;
}

uint64_t SampleTransform::sample_seed(std::string_view id, int64_t epoch) const {
  const uint64_t own = fnv1a64(id);
  if (random_max == 0) return own;
  return own ^ splitmix64(static_cast<uint64_t>(epoch) * 0x9e3779b97f4a7c15ull);
}

SampleTransform SampleTransform::from(const Params& p) {
  SampleTransform t;
  t.frames = p.integer("frames");
  t.height = p.integer("height");
  t.width = p.integer("width");
  t.selection = frame_selection_names().parse(p.str("frame_selection"), "frame_selection");
  t.fps = p.real("fps");
  t.pad_short = p.boolean("pad_short");
  const auto& k = p.integers("random_frames");
  t.random_min = k[0];
  t.random_max = k[1];
  if (t.random_min != 0 || t.random_max != 0) {
    if (t.random_min < 1 || t.random_min > t.random_max)
      throw config_error(fmt::format("random_frames = [{}, {}]: expected [kmin, kmax] with 1 <= kmin <= kmax, or [0, 0] for off",
                                     t.random_min, t.random_max));
    if (t.random_max != t.frames)
      throw config_error(fmt::format("random_frames = [{}, {}] pads every sample to kmax = {}, but frames = {} (valid: set "
                                     "frames = {})",
                                     t.random_min, t.random_max, t.random_max, t.frames, t.random_max));
  }
  t.keep_alpha = p.str("alpha") == "keep";
  const auto& bg = p.integers("background");
  t.background = {static_cast<uint8_t>(bg[0]), static_cast<uint8_t>(bg[1]), static_cast<uint8_t>(bg[2])};
  t.resize = resize_mode_names().parse(p.str("resize"), "resize");
  t.filter = resize_filter_names().parse(p.str("resize_filter"), "resize_filter");
  return t;
}

namespace {

std::vector<int64_t> uniform_indices(int64_t available, int64_t frames) {
  std::vector<int64_t> out(static_cast<size_t>(frames), 0);
  if (frames == 1 || available == 1) return out;
  for (int64_t i = 0; i < frames; ++i)
    out[i] = static_cast<int64_t>(std::floor(static_cast<double>(i) * (available - 1) / (frames - 1) + 0.5));
  return out;
}

// A frame as float RGB composited over white, then converted to LUV (L in [0, 100]).
cv::Mat luv_image(const Animation& animation, size_t frame) {
  const cv::Mat rgba(animation.height, animation.width, CV_8UC4, const_cast<uint8_t*>(animation.frames[frame].rgba.data()));
  cv::Mat rgb(animation.height, animation.width, CV_32FC3);
  for (int y = 0; y < animation.height; ++y) {
    const uint8_t* in = rgba.ptr<uint8_t>(y);
    float* out = rgb.ptr<float>(y);
    for (int x = 0; x < animation.width; ++x) {
      const float a = in[4 * x + 3] / 255.0f;
      for (int c = 0; c < 3; ++c) out[3 * x + c] = in[4 * x + c] / 255.0f * a + (1 - a);
    }
  }
  cv::Mat luv;
  cv::cvtColor(rgb, luv, cv::COLOR_RGB2Luv);
  return luv;
}

std::vector<int64_t> luv_keyframes(const Animation& animation, int64_t frames) {
  const auto count = static_cast<int64_t>(animation.frames.size());
  if (count <= frames) {
    std::vector<int64_t> all(static_cast<size_t>(count));
    std::iota(all.begin(), all.end(), 0);
    return all;
  }
  std::vector<std::pair<double, int64_t>> differences;  // (-difference, frame): sorts largest first, earlier first
  cv::Mat previous = luv_image(animation, 0);
  for (int64_t i = 1; i < count; ++i) {
    cv::Mat current = luv_image(animation, static_cast<size_t>(i));
    cv::Mat diff;
    cv::absdiff(current, previous, diff);
    const cv::Scalar mean = cv::mean(diff);
    differences.emplace_back(-(mean[0] + mean[1] + mean[2]) / 3.0, i);
    previous = std::move(current);
  }
  std::stable_sort(differences.begin(), differences.end());
  std::vector<int64_t> out{0};
  for (int64_t i = 0; i < frames - 1; ++i) out.push_back(differences[i].second);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> kmeans_keyframes(const Animation& animation, int64_t frames, uint64_t seed) {
  // Distinct frames only: identical frames would make empty or duplicate clusters.
  std::map<uint64_t, int64_t> first_by_hash;
  std::vector<int64_t> distinct;
  for (size_t i = 0; i < animation.frames.size(); ++i) {
    const auto& rgba = animation.frames[i].rgba;
    const uint64_t h = fnv1a64(std::string_view(reinterpret_cast<const char*>(rgba.data()), rgba.size()));
    if (first_by_hash.emplace(h, static_cast<int64_t>(i)).second) distinct.push_back(static_cast<int64_t>(i));
  }
  const int k = static_cast<int>(std::min<int64_t>(frames, static_cast<int64_t>(distinct.size())));
  if (k == static_cast<int64_t>(distinct.size())) return distinct;
  constexpr int kSide = 16;
  cv::Mat features(static_cast<int>(distinct.size()), kSide * kSide * 3, CV_32F);
  for (size_t row = 0; row < distinct.size(); ++row) {
    cv::Mat small;
    cv::resize(luv_image(animation, static_cast<size_t>(distinct[row])), small, cv::Size(kSide, kSide), 0, 0, cv::INTER_AREA);
    small.reshape(1, 1).copyTo(features.row(static_cast<int>(row)));
  }
  cv::Mat labels, centres;
  cv::theRNG().state = seed | 1;  // kmeans++ seeding draws from OpenCV's thread-local generator
  cv::kmeans(features, k, labels, cv::TermCriteria(cv::TermCriteria::EPS + cv::TermCriteria::COUNT, 50, 1e-4), 3,
             cv::KMEANS_PP_CENTERS, centres);
  std::vector<int64_t> nearest(static_cast<size_t>(k), -1);
  std::vector<double> best(static_cast<size_t>(k), 0);
  for (int row = 0; row < features.rows; ++row) {
    const int cluster = labels.at<int>(row);
    const double d = cv::norm(features.row(row), centres.row(cluster), cv::NORM_L2SQR);
    if (nearest[cluster] < 0 || d < best[cluster]) {
      nearest[cluster] = distinct[row];
      best[cluster] = d;
    }
  }
  std::vector<int64_t> out;
  for (int64_t f : nearest)
    if (f >= 0) out.push_back(f);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> fps_indices(const Animation& animation, int64_t frames, double fps) {
  std::vector<double> starts;
  double total = 0;
  for (const auto& f : animation.frames) {
    starts.push_back(total);
    total += f.duration_ms <= 10 ? 100 : f.duration_ms;  // browsers' rule for 0-10 ms GIF delays
  }
  std::vector<int64_t> out;
  for (int64_t i = 0; i < frames; ++i) {
    const double t = std::fmod(i * 1000.0 / fps, total);
    // The last frame that starts at or before t.
    const auto it = std::upper_bound(starts.begin(), starts.end(), t + 1e-9);
    out.push_back(static_cast<int64_t>(it - starts.begin()) - 1);
  }
  return out;
}

// One frame, selected, composited or not, resized into `out` ([4, H, W] planes, straight alpha).
// Area averaging for shrinking (what INTER_AREA computes when both sides shrink): output pixel (x, y) is
// the mean of the source rectangle it covers, [x * w / out_w, (x + 1) * w / out_w) by the same in y,
// source pixels cut by its edges counting by the fraction inside. The box is separable, so it runs as a
// vertical then a horizontal pass over precomputed taps, in float on premultiplied colour.
struct AreaTaps {
  std::vector<int> first;       // per output sample: its first source sample
  std::vector<int> count;       // and how many it covers
  std::vector<float> weights;   // count[i] weights per output sample, concatenated; each group sums to 1
};

AreaTaps area_taps(int in, int out) {
  AreaTaps taps;
  const double scale = static_cast<double>(in) / out;
  for (int i = 0; i < out; ++i) {
    const double lo = i * scale, hi = std::min<double>(in, (i + 1) * scale);
    const int first = static_cast<int>(std::floor(lo)), last = std::min(in, static_cast<int>(std::ceil(hi)));
    int count = 0;
    for (int k = first; k < last; ++k) {
      const double overlap = std::min<double>(hi, k + 1) - std::max<double>(lo, k);
      if (overlap <= 1e-9) continue;  // a boundary the rounding put one sample past
      if (count == 0) taps.first.push_back(k);
      taps.weights.push_back(static_cast<float>(overlap / scale));
      ++count;
    }
    taps.count.push_back(count);
  }
  return taps;
}

std::vector<float> area_shrink_premultiplied(const uint8_t* rgba, int w, int h, int out_w, int out_h) {
  // Whole blocks (e.g. 256 -> 64): exact integer sums of c * a and a * 255, one scale at the end (up to
  // 65536 pixels a block, so that the 32-bit sums cannot overflow).
  if (w % out_w == 0 && h % out_h == 0 && static_cast<int64_t>(w / out_w) * (h / out_h) <= 65536) {
    const int bx = w / out_w, by = h / out_h;
    const float scale = 1.0f / (65025.0f * static_cast<float>(bx * by));
    std::vector<float> out(static_cast<size_t>(out_h) * out_w * 4);
    std::vector<uint32_t> sums(static_cast<size_t>(out_w) * 4);
    for (int oy = 0; oy < out_h; ++oy) {
      std::fill(sums.begin(), sums.end(), 0u);
      for (int y = oy * by; y < (oy + 1) * by; ++y) {
        const uint8_t* p = rgba + static_cast<size_t>(y) * w * 4;
        for (int ox = 0; ox < out_w; ++ox) {
          uint32_t* sum = &sums[static_cast<size_t>(ox) * 4];
          for (int k = 0; k < bx; ++k, p += 4) {
            const uint32_t a = p[3];
            sum[0] += p[0] * a;
            sum[1] += p[1] * a;
            sum[2] += p[2] * a;
            sum[3] += a * 255;
          }
        }
      }
      float* o = out.data() + static_cast<size_t>(oy) * out_w * 4;
      for (size_t i = 0; i < sums.size(); ++i) o[i] = static_cast<float>(sums[i]) * scale;
    }
    return out;
  }
  const AreaTaps across = area_taps(w, out_w), down = area_taps(h, out_h);
  // Vertical pass first, over whole rows (contiguous, one weight per row: it vectorises), into `tall`
  // (out_h rows of w pixels); then the horizontal pass over the few rows left.
  constexpr float kColour = 1.0f / 65025.0f, kAlpha = 1.0f / 255.0f;
  const size_t row_floats = static_cast<size_t>(w) * 4;
  std::vector<float> row(row_floats), tall(static_cast<size_t>(out_h) * row_floats, 0.0f);
  const float* weight = down.weights.data();
  for (int y = 0; y < out_h; ++y) {
    float* acc = tall.data() + static_cast<size_t>(y) * row_floats;
    for (int k = 0; k < down.count[y]; ++k, ++weight) {
      // Premultiplied colour and alpha in [0, 1] for the source row.
      const uint8_t* p = rgba + static_cast<size_t>(down.first[y] + k) * row_floats;
      for (int x = 0; x < w; ++x, p += 4) {
        const int a = p[3];
        row[4 * x] = static_cast<float>(p[0] * a) * kColour;
        row[4 * x + 1] = static_cast<float>(p[1] * a) * kColour;
        row[4 * x + 2] = static_cast<float>(p[2] * a) * kColour;
        row[4 * x + 3] = static_cast<float>(a) * kAlpha;
      }
      const float wk = *weight;
      for (size_t i = 0; i < row_floats; ++i) acc[i] += wk * row[i];
    }
  }
  std::vector<float> out(static_cast<size_t>(out_h) * out_w * 4);
  for (int y = 0; y < out_h; ++y) {
    const float* src_row = tall.data() + static_cast<size_t>(y) * row_floats;
    float* o = out.data() + static_cast<size_t>(y) * out_w * 4;
    const float* wx = across.weights.data();
    for (int x = 0; x < out_w; ++x, o += 4) {
      float acc[4] = {0, 0, 0, 0};
      const float* src = src_row + 4 * across.first[x];
      for (int k = 0; k < across.count[x]; ++k, src += 4, ++wx)
        for (int c = 0; c < 4; ++c) acc[c] += *wx * src[c];
      std::copy_n(acc, 4, o);
    }
  }
  return out;
}

void render_frame(const Animation& animation, int64_t source, const SampleTransform& t, float* out) {
  const int w = animation.width, h = animation.height;
  const uint8_t* in = animation.frames[static_cast<size_t>(source)].rgba.data();
  const int out_w = static_cast<int>(t.width), out_h = static_cast<int>(t.height);
  int fit_w = out_w, fit_h = out_h;
  if (t.resize == ResizeMode::Letterbox) {
    const double scale = std::min(static_cast<double>(out_w) / w, static_cast<double>(out_h) / h);
    fit_w = std::clamp(static_cast<int>(std::lround(w * scale)), 1, out_w);
    fit_h = std::clamp(static_cast<int>(std::lround(h * scale)), 1, out_h);
  }
  const int left = (out_w - fit_w) / 2, top = (out_h - fit_h) / 2;
  const size_t plane = static_cast<size_t>(out_w) * out_h;
  const float bg[3] = {t.background[0] / 255.0f, t.background[1] / 255.0f, t.background[2] / 255.0f};
  // Writes one output pixel from premultiplied colour and alpha in [0, 1].
  auto emit = [&](size_t at, float r, float g, float b, float a) {
    if (t.keep_alpha) {
      const float inv = a > 0 ? 1.0f / a : 0.0f;
      out[at] = std::min(r * inv, 1.0f);
      out[plane + at] = std::min(g * inv, 1.0f);
      out[2 * plane + at] = std::min(b * inv, 1.0f);
      out[3 * plane + at] = a;
    } else {
      out[at] = r + bg[0] * (1 - a);
      out[plane + at] = g + bg[1] * (1 - a);
      out[2 * plane + at] = b + bg[2] * (1 - a);
      out[3 * plane + at] = 1.0f;
    }
  };
  // Everything outside the fitted picture (letterbox borders) is transparent.
  if (fit_w != out_w || fit_h != out_h)
    for (int y = 0; y < out_h; ++y)
      for (int x = 0; x < out_w; ++x)
        if (x < left || y < top || x >= left + fit_w || y >= top + fit_h) emit(static_cast<size_t>(y) * out_w + x, 0, 0, 0, 0);

  if (fit_w == w && fit_h == h) {
    // No resampling: straight from the 8-bit pixels, so values are exactly k / 255 (looked up: a table
    // holds the same correctly rounded quotients as dividing, without a division per channel).
    static const auto kOver255 = [] {
      std::array<float, 256> table{};
      for (int k = 0; k < 256; ++k) table[static_cast<size_t>(k)] = static_cast<float>(k) / 255.0f;
      return table;
    }();
    for (int y = 0; y < h; ++y) {
      const uint8_t* p = in + static_cast<size_t>(y) * w * 4;
      float* r = out + static_cast<size_t>(y + top) * out_w + left;
      float* g = r + plane;
      float* b = g + plane;
      float* alpha = b + plane;
      for (int x = 0; x < w; ++x, p += 4) {
        const float a = kOver255[p[3]];
        if (t.keep_alpha) {
          const bool visible = p[3] > 0;
          r[x] = visible ? kOver255[p[0]] : 0.0f;
          g[x] = visible ? kOver255[p[1]] : 0.0f;
          b[x] = visible ? kOver255[p[2]] : 0.0f;
          alpha[x] = a;
        } else {
          const float uncovered = 1 - a;
          r[x] = kOver255[p[0]] * a + bg[0] * uncovered;
          g[x] = kOver255[p[1]] * a + bg[1] * uncovered;
          b[x] = kOver255[p[2]] * a + bg[2] * uncovered;
          alpha[x] = 1.0f;
        }
      }
    }
    return;
  }
  // Resizing works on premultiplied colour: it must not average colour hidden under transparent pixels
  // into visible edges.
  const bool shrinking = static_cast<int64_t>(fit_w) * fit_h < static_cast<int64_t>(w) * h;
  const ResizeFilter filter = t.filter != ResizeFilter::Auto ? t.filter : shrinking ? ResizeFilter::Area : ResizeFilter::Bicubic;
  std::vector<float> resized;  // fit_h x fit_w x 4, premultiplied colour and alpha in [0, 1]
  if (filter == ResizeFilter::Area && fit_w <= w && fit_h <= h) {
    resized = area_shrink_premultiplied(in, w, h, fit_w, fit_h);
  } else {
    // OpenCV for the rest (bicubic; area when one side grows), in 16 bits (c * a, alpha * 255: both scaled
    // by 255 * 255), which resize faster than floats while keeping 1/65025 resolution.
    cv::Mat premultiplied(h, w, CV_16UC4);
    for (int y = 0; y < h; ++y) {
      uint16_t* row = premultiplied.ptr<uint16_t>(y);
      const uint8_t* p = in + static_cast<size_t>(y) * w * 4;
      for (int x = 0; x < w; ++x, p += 4) {
        const uint16_t a = p[3];
        row[4 * x] = static_cast<uint16_t>(p[0] * a);
        row[4 * x + 1] = static_cast<uint16_t>(p[1] * a);
        row[4 * x + 2] = static_cast<uint16_t>(p[2] * a);
        row[4 * x + 3] = static_cast<uint16_t>(a * 255);
      }
    }
    cv::Mat small;
    cv::resize(premultiplied, small, cv::Size(fit_w, fit_h), 0, 0, filter == ResizeFilter::Area ? cv::INTER_AREA : cv::INTER_CUBIC);
    constexpr float kScale = 1.0f / 65025.0f;
    resized.resize(static_cast<size_t>(fit_w) * fit_h * 4);
    for (int y = 0; y < fit_h; ++y) {
      const uint16_t* row = small.ptr<uint16_t>(y);
      for (int k = 0; k < fit_w * 4; ++k) resized[static_cast<size_t>(y) * fit_w * 4 + k] = row[k] * kScale;
    }
  }
  for (int y = 0; y < fit_h; ++y) {
    const float* p = resized.data() + static_cast<size_t>(y) * fit_w * 4;
    const size_t at = static_cast<size_t>(y + top) * out_w + left;
    if (t.keep_alpha) {
      for (int x = 0; x < fit_w; ++x, p += 4) {
        const float a = std::min(p[3], 1.0f);
        // Bicubic overshoot (and float rounding): premultiplied colour cannot exceed alpha.
        emit(at + x, std::min(p[0], a), std::min(p[1], a), std::min(p[2], a), a);
      }
      continue;
    }
    // Composited (the common case) written plane by plane without emit's per-pixel branch.
    float* r = out + at;
    float* g = r + plane;
    float* b = g + plane;
    float* alpha = b + plane;
    for (int x = 0; x < fit_w; ++x, p += 4) {
      const float a = std::min(p[3], 1.0f), uncovered = 1 - a;
      r[x] = std::min(p[0], a) + bg[0] * uncovered;
      g[x] = std::min(p[1], a) + bg[1] * uncovered;
      b[x] = std::min(p[2], a) + bg[2] * uncovered;
      alpha[x] = 1.0f;
    }
  }
}

}  // namespace

std::vector<int64_t> select_frames(const Animation& animation, FrameSelection selection, int64_t frames, double fps,
                                   uint64_t seed) {
  if (animation.frames.empty()) throw internal_error("select_frames: an animation without frames");
  if (frames < 1) throw internal_error("select_frames: frames < 1");
  const auto count = static_cast<int64_t>(animation.frames.size());
  switch (selection) {
    case FrameSelection::Uniform: return uniform_indices(count, frames);
    case FrameSelection::Fps: return fps_indices(animation, frames, fps);
    case FrameSelection::Luv: return luv_keyframes(animation, frames);
    case FrameSelection::KMeans: return kmeans_keyframes(animation, frames, seed);
  }
  throw internal_error("select_frames: unknown selection");
}

namespace {

// Which source frame each output frame shows, and which output frames are real: needs only the frames'
// count and durations, except for the LUV and k-means selections (pixels).
SampleFrames plan_sample(const Animation& animation, const SampleTransform& t, uint64_t seed,
                         const std::vector<int64_t>& keyframes) {
  int64_t wanted = t.frames;
  if (t.random_max > 0) wanted = t.random_min + static_cast<int64_t>(splitmix64(seed ^ 0x5eed) % (t.random_max - t.random_min + 1));
  std::vector<int64_t> chosen;
  for (int64_t k : keyframes)
    if (k >= 0 && k < static_cast<int64_t>(animation.frames.size()) && static_cast<int64_t>(chosen.size()) < wanted)
      chosen.push_back(k);
  const bool from_keyframes = !chosen.empty();
  if (chosen.empty()) chosen = select_frames(animation, t.selection, wanted, t.fps, seed);
  SampleFrames out;
  out.frames = t.frames;
  out.height = t.height;
  out.width = t.width;
  const bool pad = t.pad_short || t.random_max > 0;
  if (!pad && static_cast<int64_t>(chosen.size()) < t.frames) {
    // Stretch the selection by repeating its frames evenly.
    std::vector<int64_t> stretched;
    for (int64_t i : uniform_indices(static_cast<int64_t>(chosen.size()), t.frames)) stretched.push_back(chosen[i]);
    chosen = std::move(stretched);
  }
  out.valid.assign(static_cast<size_t>(t.frames), 0);
  for (size_t i = 0; i < chosen.size() && i < out.valid.size(); ++i) out.valid[i] = 1;
  while (static_cast<int64_t>(chosen.size()) < t.frames) chosen.push_back(chosen.back());
  chosen.resize(static_cast<size_t>(t.frames));
  out.source_frames = chosen;
  for (int64_t i = 0; i < t.frames; ++i) {
    // How long the frame shows: its own delay (0-10 ms as 100 ms, as browsers play them) or, resampled at
    // a frame rate, one period; padding is never shown.
    const int32_t delay = animation.frames[static_cast<size_t>(chosen[i])].duration_ms;
    const int32_t shown = t.selection == FrameSelection::Fps && !from_keyframes ? static_cast<int32_t>(std::lround(1000.0 / t.fps))
                          : delay <= 10                                        ? 100
                                                                               : delay;
    out.durations_ms.push_back(out.valid[i] ? shown : 0);
  }
  return out;
}

// The planned frames' pixels: composited or not, resized.
void render_sample(const Animation& animation, const SampleTransform& t, SampleFrames& out) {
  const auto& chosen = out.source_frames;
  const size_t frame_floats = static_cast<size_t>(4 * t.height * t.width);
  out.rgba.assign(frame_floats * static_cast<size_t>(t.frames), 0.0f);
  for (int64_t i = 0; i < t.frames; ++i) {
    // Repeated source frames are rendered once and copied.
    if (i > 0 && chosen[i] == chosen[i - 1])
      std::copy_n(out.rgba.begin() + static_cast<std::ptrdiff_t>((i - 1) * frame_floats), frame_floats,
                  out.rgba.begin() + static_cast<std::ptrdiff_t>(i * frame_floats));
    else
      render_frame(animation, chosen[i], t, out.rgba.data() + i * frame_floats);
  }
}

}  // namespace

SampleFrames make_sample(const Animation& animation, const SampleTransform& t, uint64_t seed,
                         const std::vector<int64_t>& keyframes) {
  SampleFrames out = plan_sample(animation, t, seed, keyframes);
  render_sample(animation, t, out);
  return out;
}

SampleFrames load_sample(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits,
                         const SampleTransform& t, uint64_t seed, const std::vector<int64_t>& keyframes) {
  const MediaFormat format = detect_format(bytes.data(), std::min<size_t>(bytes.size(), 16));
  const bool animated_format = format == MediaFormat::Gif || format == MediaFormat::WebP;
  if (animated_format && (t.selection == FrameSelection::Uniform || t.selection == FrameSelection::Fps)) {
    // The plan from the frames' timing alone, then pixels only for the frames it shows (a GIF also skips
    // decoding what no shown frame depends on).
    const bool gif = format == MediaFormat::Gif;
    const Animation timing = gif ? gif_timing(bytes, name, limits) : webp_timing(bytes, name, limits);
    SampleFrames out = plan_sample(timing, t, seed, keyframes);
    std::vector<bool> needed(timing.frames.size(), false);
    for (int64_t f : out.source_frames) needed[static_cast<size_t>(f)] = true;
    render_sample(gif ? decode_gif(bytes, name, limits, needed) : decode_webp(bytes, name, limits, needed), t, out);
    return out;
  }
  return make_sample(decode_sticker(bytes, name, limits).animation, t, seed, keyframes);
}

SampleFrames load_sample(const std::filesystem::path& file, const DecodeLimits& limits, const SampleTransform& t, uint64_t seed,
                         const std::vector<int64_t>& keyframes) {
  uint8_t head[16] = {0};
  {
    std::ifstream in(file, std::ios::binary);
    in.read(reinterpret_cast<char*>(head), sizeof(head));
    const MediaFormat format = detect_format(head, static_cast<size_t>(in.gcount()));
    // Video is read by FFmpeg from the file itself (no temporary copy); everything else from memory.
    if (format == MediaFormat::Mp4 || format == MediaFormat::WebM)
      return make_sample(read_sticker(file, limits).animation, t, seed, keyframes);
  }
  const std::string bytes = read_text_file(file);
  return load_sample({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, file.string(), limits, t, seed, keyframes);
}

}  // namespace asg
