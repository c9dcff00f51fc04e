// caption_accuracy: does the generated sticker show what its caption says? Measured directly from the
// sampled frames for datasets that use the synthetic sticker vocabulary (labels colour, shape,
// direction; see datasets/synthetic_stickers). Exact on the synthetic data: real stickers score 1.
//
// Per clip (straight RGBA [T, 4, H, W]):
//   sprite mask   alpha > 0.5
//   colour        mean RGB under the mask over all frames -> nearest palette colour
//   direction     least-squares slope of the mask centroid over time; the dominant axis and its sign,
//                 "none" if the sprite moves less than min_travel pixels over the clip
//   shape         per frame, templates of every shape fitted to the mask's area and centroid (small
//                 scale/offset search); the shape with the highest summed IoU over frames
//   clean frame   some sprite, and at most max_soft_fraction of pixels with alpha in (0.2, 0.8)
// Keys: caption_accuracy (mean of colour, shape, direction accuracy), caption_accuracy.colour,
// .shape, .direction, .all (all three right), .clean (fraction of clean frames). All higher-is-better.
#include <fmt/format.h>
#include <torch/torch.h>

#include <array>
#include <cmath>

#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "sprite_geometry.h"

namespace asg::metrics {
namespace {

namespace syn = asg::synthetic;

struct Judgement {
  std::string colour, shape, direction;
  int64_t clean_frames = 0;
};

class CaptionAccuracy final : public Metric {
 public:
  CaptionAccuracy(const Params& p, const MetricContext& ctx)
      : min_travel_(p.real("min_travel")), max_soft_(p.real("max_soft_fraction")) {
    for (const char* key : {"colour", "shape", "direction"}) {
      const auto& keys = ctx.data.label_keys;
      if (std::find(keys.begin(), keys.end(), key) == keys.end())
        throw config_error(fmt::format("[metrics] caption_accuracy needs dataset labels colour, shape and direction; dataset "
                                       "'{}' provides: {}",
                                       ctx.dataset_name, keys.empty() ? "none" : fmt::format("{}", fmt::join(keys, ", "))));
    }
  }

  Judgement judge(const torch::Tensor& clip) const {
    auto c = clip.to(torch::kFloat32).contiguous();
    const int64_t T = c.size(0), H = c.size(2), W = c.size(3);
    auto acc = c.accessor<float, 4>();
    Judgement j;
    double rgb[3] = {0, 0, 0};
    int64_t total = 0;
    std::vector<double> ts, xs, ys;
    std::array<double, 4> shape_score{};
    for (int64_t t = 0; t < T; ++t) {
      std::vector<uint8_t> mask(H * W, 0);
      int64_t area = 0, soft = 0;
      double mx = 0, my = 0;
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          float a = acc[t][3][y][x];
          if (a > 0.2f && a < 0.8f) ++soft;
          if (a <= 0.5f) continue;
          mask[y * W + x] = 1;
          ++area;
          mx += x + 0.5;
          my += y + 0.5;
          for (int k = 0; k < 3; ++k) rgb[k] += acc[t][k][y][x];
        }
      total += area;
      if (area > 0 && soft <= max_soft_ * H * W) ++j.clean_frames;
      if (area < 3) continue;
      mx /= area;
      my /= area;
      ts.push_back(static_cast<double>(t));
      xs.push_back(mx);
      ys.push_back(my);
      for (int s = 0; s < 4; ++s) shape_score[s] += best_iou(static_cast<syn::Shape>(s), mask, W, H, area, mx, my);
    }
    if (total == 0) {
      j.colour = j.shape = j.direction = "none";
      return j;
    }
    // Colour: nearest palette entry to the mean.
    double best = 1e30;
    for (const auto& col : syn::palette()) {
      double d = 0;
      for (int k = 0; k < 3; ++k) d += std::pow(rgb[k] / total * 255.0 - col.rgb[k], 2);
      if (d < best) {
        best = d;
        j.colour = col.name;
      }
    }
    j.shape = syn::shape_names()[std::max_element(shape_score.begin(), shape_score.end()) - shape_score.begin()];
    if (ts.empty()) j.shape = "none";
    j.direction = direction(ts, xs, ys, T);
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

  static double best_iou(syn::Shape shape, const std::vector<uint8_t>& mask, int64_t W, int64_t H, int64_t area, double mx,
                         double my) {
    const auto& m = syn::moments(shape);
    const double r0 = std::sqrt(area / m.area);
    double best = 0;
    for (double scale : {0.9, 1.0, 1.1})
      for (double ox : {-0.5, 0.0, 0.5})
        for (double oy : {-0.5, 0.0, 0.5}) {
          double r = r0 * scale;
          auto tmpl = syn::render_mask(shape, static_cast<int>(W), static_cast<int>(H), mx - m.centroid_dx * r + ox,
                                       my - m.centroid_dy * r + oy, r);
          int64_t inter = 0, uni = 0;
          for (size_t i = 0; i < mask.size(); ++i) {
            inter += mask[i] & tmpl[i];
            uni += mask[i] | tmpl[i];
          }
          if (uni > 0) best = std::max(best, static_cast<double>(inter) / uni);
        }
    return best;
  }

  void update(const torch::Tensor& generated, const std::vector<Sticker>& references) override {
    if (generated.size(0) != static_cast<int64_t>(references.size()))
      throw internal_error("caption_accuracy: clips and references differ in number");
    for (int64_t i = 0; i < generated.size(0); ++i) {
      const auto& labels = references[i].labels;
      auto label = [&](const char* key) {
        auto it = labels.find(key);
        if (it == labels.end())
          throw data_error(fmt::format("caption_accuracy: reference {} has no '{}' label", references[i].id, key));
        return it->second;
      };
      Judgement j = judge(generated[i]);
      bool colour = j.colour == label("colour"), shape = j.shape == label("shape"), dir = j.direction == label("direction");
      colour_ += colour;
      shape_ += shape;
      direction_ += dir;
      all_ += colour && shape && dir;
      clean_ += static_cast<double>(j.clean_frames) / generated.size(1);
      ++count_;
    }
  }

  std::vector<MetricValue> compute() override {
    if (count_ == 0) throw data_error("caption_accuracy: no clips were evaluated");
    double n = static_cast<double>(count_);
    return {
        {"caption_accuracy", (colour_ + shape_ + direction_) / (3 * n), true},
        {"caption_accuracy.colour", colour_ / n, true},
        {"caption_accuracy.shape", shape_ / n, true},
        {"caption_accuracy.direction", direction_ / n, true},
        {"caption_accuracy.all", all_ / n, true},
        {"caption_accuracy.clean", clean_ / n, true},
    };
  }

 private:
  double min_travel_, max_soft_;
  double colour_ = 0, shape_ = 0, direction_ = 0, all_ = 0, clean_ = 0;
  int64_t count_ = 0;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "caption_accuracy", "1.0.0", "colour, shape and motion direction measured from the frames vs the caption (synthetic vocabulary)",
    std::vector<asg::ParamSpec>{
        asg::float_param("min_travel", 1.0, "pixels the sprite must travel over the clip to count as moving").range(0, 1e6),
        asg::float_param("max_soft_fraction", 0.02, "share of half-transparent pixels a clean frame may have").range(0, 1),
    },
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::CaptionAccuracy>(p, ctx); }))
