// caption_accuracy: does the generated sticker show what its caption says, and do its frames agree on
// one sprite travelling one path? Measured directly from the sampled frames for datasets that use the
// sprite vocabulary (datasets/lib/sprite_vocabulary; labels colour, shape, direction). Exact on the
// synthetic data: real stickers score 1 on every key.
//
// Per clip (straight RGBA [T, 4, H, W]); a frame "has a sprite" if its mask (alpha > 0.5) has >= 3 px:
//   colour     mean RGB under the mask over all frames -> nearest palette colour
//   shape      per frame, templates of every shape fitted to the mask's area and centroid (small
//              scale/offset search); the shape with the highest summed IoU over frames
//   direction  least-squares slope of the mask centroid over time; the dominant axis and its sign,
//              "none" if the sprite moves less than min_travel pixels over the clip
//   path       the frames trace one coherent path in the captioned direction: every frame has a sprite;
//              along the captioned direction each step between frames is either a hold (within
//              still_tolerance of 0) or a jump (at least min_jump forward), with at least one jump, all
//              jumps within jump_tolerance of each other; on the other axis the sprite stays within
//              cross_tolerance. Steps back and sub-jump drift (what noise and smeared sprites do) fail
//   identity   every frame has a sprite, and every frame on its own is judged the same colour and the
//              same shape (a sprite that changes colour or shape mid-clip fails)
//   motion     how far the sprite travels along the captioned axis (max - min of its centroid) as a
//              fraction of how far the reference sticker travels, capped at 1: frozen outputs score 0
//   clean      share of frames with some sprite and at most max_soft_fraction half-transparent pixels
// A model that draws each frame on its own from its index cannot pass `path`: starts, jump sizes and
// hold lengths are random per clip in the data, so only frames that agree with each other trace one.
// Keys: caption_accuracy (mean of the colour, shape, direction, path and identity checks),
// caption_accuracy.colour / .shape / .direction / .path / .identity (each a share of clips), .all (all
// five right), .motion (mean), .clean (mean). All higher-is-better.
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "sprite_vocabulary.h"

namespace asg::metrics {
namespace {

namespace syn = asg::synthetic;

// Where the sprite is in one frame and what it looks like.
struct FrameView {
  int64_t area = 0;
  double x = 0, y = 0;                 // mask centroid, pixels (x right, y down)
  std::array<double, 3> rgb_sum{};     // summed straight RGB under the mask
  std::array<double, 4> shape_iou{};   // best template IoU per shape
  bool clean = false;
  bool has_sprite() const { return area >= 3; }
};

struct Judgement {
  std::string colour, shape, direction;
  bool path = false, identity = false;
  double motion = 0;
  int64_t clean_frames = 0;
};

std::string nearest_colour(const std::array<double, 3>& rgb_mean) {
  double best = 1e30;
  std::string name;
  for (const auto& col : syn::palette()) {
    double d = 0;
    for (int k = 0; k < 3; ++k) d += std::pow(rgb_mean[k] * 255.0 - col.rgb[k], 2);
    if (d < best) {
      best = d;
      name = col.name;
    }
  }
  return name;
}

// The best-scoring shape. Exact ties go to the later shape in vocabulary order (circle, square,
// triangle, star): at 6 px a circle template covers a square exactly, never the other way round.
size_t best_shape(const std::array<double, 4>& score) {
  size_t best = 0;
  for (size_t s = 1; s < score.size(); ++s)
    if (score[s] >= score[best]) best = s;
  return best;
}

// +1 or -1 along x or y for a direction label; {0, 0} for anything else.
std::pair<int, int> unit_of(const std::string& direction) {
  if (direction == "right") return {1, 0};
  if (direction == "left") return {-1, 0};
  if (direction == "down") return {0, 1};
  if (direction == "up") return {0, -1};
  return {0, 0};
}

class CaptionAccuracy final : public Metric {
 public:
  CaptionAccuracy(const Params& p, const MetricContext& ctx)
      : min_travel_(p.real("min_travel")),
        max_soft_(p.real("max_soft_fraction")),
        still_tol_(p.real("still_tolerance")),
        min_jump_(p.real("min_jump")),
        jump_tol_(p.real("jump_tolerance")),
        cross_tol_(p.real("cross_tolerance")) {
    (void)ctx;  // the label keys and vocabulary it needs are declared on the factory and checked by the core
  }

  // Per-frame mask statistics; the shape template search (the costly part) only when `with_shapes`.
  std::vector<FrameView> view(const torch::Tensor& clip, bool with_shapes = true) const {
    auto c = clip.to(torch::kFloat32).contiguous();
    const int64_t T = c.size(0), H = c.size(2), W = c.size(3);
    auto acc = c.accessor<float, 4>();
    std::vector<FrameView> frames(T);
    for (int64_t t = 0; t < T; ++t) {
      FrameView& f = frames[t];
      std::vector<uint8_t> mask(H * W, 0);
      int64_t soft = 0;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          float a = acc[t][3][y][x];
          if (a > 0.2f && a < 0.8f) ++soft;
          if (a <= 0.5f) continue;
          mask[y * W + x] = 1;
          ++f.area;
          f.x += x + 0.5;
          f.y += y + 0.5;
          for (int k = 0; k < 3; ++k) f.rgb_sum[k] += acc[t][k][y][x];
        }
      f.clean = f.area > 0 && soft <= max_soft_ * H * W;
      if (f.area == 0) continue;
      f.x /= f.area;
      f.y /= f.area;
      if (!f.has_sprite() || !with_shapes) continue;
      for (int s = 0; s < 4; ++s) f.shape_iou[s] = best_iou(static_cast<syn::Shape>(s), mask, W, H, f.area, f.x, f.y);
    }
    return frames;
  }

  // `captioned` is the direction label of the reference; `reference_span` how far its sprite travels.
  Judgement judge(const torch::Tensor& clip, const std::string& captioned, double reference_span) const {
    const auto frames = view(clip);
    Judgement j;
    std::array<double, 3> rgb{};
    std::array<double, 4> shape_score{};
    int64_t total = 0;
    std::vector<double> ts, xs, ys;
    for (size_t t = 0; t < frames.size(); ++t) {
      const FrameView& f = frames[t];
      j.clean_frames += f.clean;
      total += f.area;
      for (int k = 0; k < 3; ++k) rgb[k] += f.rgb_sum[k];
      if (!f.has_sprite()) continue;
      ts.push_back(static_cast<double>(t));
      xs.push_back(f.x);
      ys.push_back(f.y);
      for (int s = 0; s < 4; ++s) shape_score[s] += f.shape_iou[s];
    }
    if (total == 0) {
      j.colour = j.shape = j.direction = "none";
      return j;
    }
    for (auto& v : rgb) v /= static_cast<double>(total);
    j.colour = nearest_colour(rgb);
    j.shape = ts.empty() ? "none" : syn::shape_names()[best_shape(shape_score)];
    j.direction = direction(ts, xs, ys, static_cast<int64_t>(frames.size()));
    j.identity = identity(frames);
    j.path = path(frames, captioned);
    j.motion = motion(frames, captioned, reference_span);
    return j;
  }

  std::string direction(const std::vector<double>& ts, const std::vector<double>& xs, const std::vector<double>& ys,
                        int64_t frames) const {
    if (ts.size() < 2) return "none";
    const double n = static_cast<double>(ts.size());
    double mt = 0, mx = 0, my = 0;
    for (size_t i = 0; i < ts.size(); ++i) mt += ts[i] / n, mx += xs[i] / n, my += ys[i] / n;
    double stt = 0, stx = 0, sty = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
      stt += (ts[i] - mt) * (ts[i] - mt);
      stx += (ts[i] - mt) * (xs[i] - mx);
      sty += (ts[i] - mt) * (ys[i] - my);
    }
    if (stt == 0) return "none";
    double vx = stx / stt * (frames - 1), vy = sty / stt * (frames - 1);  // travel over the clip
    if (std::max(std::fabs(vx), std::fabs(vy)) < min_travel_) return "none";
    if (std::fabs(vx) >= std::fabs(vy)) return vx > 0 ? "right" : "left";
    return vy > 0 ? "down" : "up";
  }

  static bool identity(const std::vector<FrameView>& frames) {
    std::string colour, shape;
    for (const FrameView& f : frames) {
      if (!f.has_sprite()) return false;
      std::array<double, 3> mean{};
      for (int k = 0; k < 3; ++k) mean[k] = f.rgb_sum[k] / static_cast<double>(f.area);
      std::string c = nearest_colour(mean), s = syn::shape_names()[best_shape(f.shape_iou)];
      if (colour.empty()) colour = c, shape = s;
      if (c != colour || s != shape) return false;
    }
    return true;
  }

  bool path(const std::vector<FrameView>& frames, const std::string& captioned) const {
    auto [ux, uy] = unit_of(captioned);
    if (ux == 0 && uy == 0) return false;
    std::vector<double> along, cross;
    for (const FrameView& f : frames) {
      if (!f.has_sprite()) return false;
      along.push_back(ux * f.x + uy * f.y);  // grows in the captioned direction
      cross.push_back(uy != 0 ? f.x : f.y);
    }
    double jump_min = 1e30, jump_max = -1e30;
    for (size_t t = 1; t < along.size(); ++t) {
      double step = along[t] - along[t - 1];
      if (std::fabs(step) <= still_tol_) continue;  // holds
      if (step < min_jump_) return false;           // stepped back, or drifted less than a jump
      jump_min = std::min(jump_min, step);
      jump_max = std::max(jump_max, step);
    }
    if (jump_max < 0) return false;  // never jumped
    if (jump_max - jump_min > jump_tol_) return false;
    auto [lo, hi] = std::minmax_element(cross.begin(), cross.end());
    return *hi - *lo <= cross_tol_;
  }

  // Travel along the captioned axis, as a fraction of the reference's (capped at 1).
  static double span_along(const std::vector<FrameView>& frames, const std::string& captioned) {
    auto [ux, uy] = unit_of(captioned);
    double lo = 1e30, hi = -1e30;
    for (const FrameView& f : frames) {
      if (!f.has_sprite()) continue;
      double a = ux != 0 ? f.x : f.y;
      lo = std::min(lo, a);
      hi = std::max(hi, a);
    }
    return hi >= lo ? hi - lo : 0.0;
  }
  static double motion(const std::vector<FrameView>& frames, const std::string& captioned, double reference_span) {
    double span = span_along(frames, captioned);
    if (reference_span <= 0) return span <= 0 ? 1.0 : 0.0;
    return std::min(1.0, span / reference_span);
  }

  // Best IoU of the shape's templates with the frame's mask: templates fitted to the mask's area and
  // centroid (a small scale/offset search), and the vocabulary's own pixel-aligned renderings of
  // diameter d (what synthetic_stickers draws) placed at the mask's bounding box.
  static double best_iou(syn::Shape shape, const std::vector<uint8_t>& mask, int64_t W, int64_t H, int64_t area, double mx,
                         double my) {
    auto iou = [&](const std::vector<uint8_t>& tmpl) {
      int64_t inter = 0, uni = 0;
      for (size_t i = 0; i < mask.size(); ++i) {
        inter += mask[i] & tmpl[i];
        uni += mask[i] | tmpl[i];
      }
      return uni > 0 ? static_cast<double>(inter) / uni : 0.0;
    };
    const auto& m = syn::moments(shape);
    const double r0 = std::sqrt(area / m.area);
    double best = 0;
    for (double scale : {0.9, 1.0, 1.1})
      for (double ox : {-0.5, 0.0, 0.5})
        for (double oy : {-0.5, 0.0, 0.5}) {
          double r = r0 * scale;
          best = std::max(best, iou(syn::render_mask(shape, static_cast<int>(W), static_cast<int>(H), mx - m.centroid_dx * r + ox,
                                                     my - m.centroid_dy * r + oy, r)));
        }
    int64_t x0 = W, y0 = H;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        if (mask[y * W + x]) x0 = std::min(x0, x), y0 = std::min(y0, y);
    const int64_t d0 = std::lround(2 * r0);
    for (int64_t d = std::max<int64_t>(3, d0 - 1); d <= d0 + 1; ++d) {
      // Where the canonical d-pixel sprite puts its first opaque row and column.
      auto sprite = syn::render_mask(shape, static_cast<int>(d), static_cast<int>(d), d / 2.0, d / 2.0, d / 2.0);
      int64_t sx = d, sy = d;
      for (int64_t y = 0; y < d; ++y)
        for (int64_t x = 0; x < d; ++x)
          if (sprite[y * d + x]) sx = std::min(sx, x), sy = std::min(sy, y);
      std::vector<uint8_t> tmpl(mask.size(), 0);
      for (int64_t y = 0; y < d; ++y)
        for (int64_t x = 0; x < d; ++x) {
          int64_t ty = y0 - sy + y, tx = x0 - sx + x;
          if (sprite[y * d + x] && ty >= 0 && ty < H && tx >= 0 && tx < W) tmpl[ty * W + tx] = 1;
        }
      best = std::max(best, iou(tmpl));
    }
    return best;
  }

  void update(const torch::Tensor& generated, const std::vector<Sticker>& references, int64_t) override {
    if (generated.size(0) != static_cast<int64_t>(references.size()))
      throw internal_error("caption_accuracy: clips and references differ in number");
    for (int64_t i = 0; i < generated.size(0); ++i) {
      const Sticker& ref = references[i];
      auto label = [&](const char* key) {
        auto it = ref.labels.find(key);
        if (it == ref.labels.end())
          throw data_error(fmt::format("caption_accuracy: reference {} has no '{}' label", ref.id, key));
        return it->second;
      };
      if (!ref.frames.defined())
        throw data_error(fmt::format("caption_accuracy: reference {} has no frames (needed for the motion amount)", ref.id));
      const std::string captioned = label("direction");
      Judgement j = judge(generated[i], captioned, span_along(view(ref.frames, /*with_shapes=*/false), captioned));
      bool colour = j.colour == label("colour"), shape = j.shape == label("shape"), dir = j.direction == captioned;
      colour_ += colour;
      shape_ += shape;
      direction_ += dir;
      path_ += j.path;
      identity_ += j.identity;
      all_ += colour && shape && dir && j.path && j.identity;
      motion_ += j.motion;
      clean_ += static_cast<double>(j.clean_frames) / generated.size(1);
      ++count_;
    }
  }

  MetricState state() const override {
    MetricState s;
    for (const auto& [name, value] : counters()) s[name] = torch::full({}, *value, torch::kFloat64);
    s["count"] = torch::full({}, static_cast<double>(count_), torch::kFloat64);
    return s;
  }
  void merge(const MetricState& s) override {
    auto at = [&](const std::string& key) {
      auto it = s.find(key);
      if (it == s.end()) throw data_error("caption_accuracy: a state without '" + key + "' (another version of the metric?)");
      return it->second.item<double>();
    };
    for (const auto& [name, value] : counters()) *value += at(name);
    count_ += static_cast<int64_t>(at("count"));
  }

  std::vector<MetricValue> result() override {
    if (count_ == 0) throw data_error("caption_accuracy: no clips were evaluated");
    double n = static_cast<double>(count_);
    return {
        {"caption_accuracy", (colour_ + shape_ + direction_ + path_ + identity_) / (5 * n), true},
        {"caption_accuracy.colour", colour_ / n, true},
        {"caption_accuracy.shape", shape_ / n, true},
        {"caption_accuracy.direction", direction_ / n, true},
        {"caption_accuracy.path", path_ / n, true},
        {"caption_accuracy.identity", identity_ / n, true},
        {"caption_accuracy.all", all_ / n, true},
        {"caption_accuracy.motion", motion_ / n, true},
        {"caption_accuracy.clean", clean_ / n, true},
    };
  }

 private:
  double min_travel_, max_soft_, still_tol_, min_jump_, jump_tol_, cross_tol_;
  double colour_ = 0, shape_ = 0, direction_ = 0, path_ = 0, identity_ = 0, all_ = 0, motion_ = 0, clean_ = 0;
  int64_t count_ = 0;
  // The running sums by name: what state() and merge() carry.
  std::vector<std::pair<std::string, double*>> counters() {
    return {{"colour", &colour_}, {"shape", &shape_}, {"direction", &direction_}, {"path", &path_},
            {"identity", &identity_}, {"all", &all_}, {"motion", &motion_}, {"clean", &clean_}};
  }
  std::vector<std::pair<std::string, const double*>> counters() const {
    return {{"colour", &colour_}, {"shape", &shape_}, {"direction", &direction_}, {"path", &path_},
            {"identity", &identity_}, {"all", &all_}, {"motion", &motion_}, {"clean", &clean_}};
  }
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(
    asg::make_factory<asg::Metric>(
        "caption_accuracy", "2.0.0",
        "colour, shape, direction, path coherence, identity and motion measured from the frames vs the caption (sprite vocabulary)",
        std::vector<asg::ParamSpec>{
            asg::float_param("min_travel", 1.0, "pixels the sprite must travel over the clip to count as moving").range(0, 1e6),
            asg::float_param("max_soft_fraction", 0.02, "share of half-transparent pixels a clean frame may have").range(0, 1),
            asg::float_param("still_tolerance", 0.5, "path: centroid steps up to this many pixels count as holding still").range(0, 1e6),
            asg::float_param("min_jump", 1.5, "path: smallest forward step that counts as a jump, in pixels (data: 2-4)").range(0, 1e6),
            asg::float_param("jump_tolerance", 1.0, "path: largest minus smallest jump of one clip, in pixels").range(0, 1e6),
            asg::float_param("cross_tolerance", 1.0, "path: drift allowed across the direction of motion, in pixels").range(0, 1e6),
        },
        [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::CaptionAccuracy>(p, ctx); })
        .requires_label_keys({"colour", "shape", "direction"})
        .requires_vocabulary(asg::synthetic::kVocabularyName, asg::synthetic::kVocabularyVersion))
