// temporal_flickering: VBench's temporal-flickering score (Vchitect/VBench, vbench/temporal_flickering.py):
//   per video: (255 - mean over t of MAE(frame[t], frame[t+1])) / 255 on uint8 RGB frames; then the mean.
// Stickers are transparent and VBench's videos are not: frames are first composited over `background`
// (part of the protocol, so part of the protocol hash) and quantised to uint8 as a decoded video would be.
// Higher is better, and a still clip scores 1: read it with motion.frozen_fraction.
// temporal_flickering.reference is the same score of the protocol's real set (its real frames only).
#include <fmt/format.h>
#include <torch/torch.h>

#include <array>

#include "asg/kinds/metric.h"
#include "asg/media/alpha.h"
#include "asg/plugin.h"
#include "clip_stats.h"

namespace asg::metrics {
namespace {

class TemporalFlickering final : public Metric {
 public:
  TemporalFlickering(const Params& p, const MetricContext& ctx) {
    const auto bg = p.integers("background");
    for (size_t i = 0; i < 3; ++i) background_[i] = static_cast<double>(bg[i]) / 255.0;
    if (ctx.data.frames < 2)
      throw config_error(fmt::format("temporal_flickering needs clips of at least 2 frames; dataset '{}' has {}",
                                     ctx.dataset_name, ctx.data.frames));
  }

  // [B, T, 4, H, W] straight RGBA in [0, 1] -> [B] VBench scores.
  torch::Tensor scores(const torch::Tensor& clips) const {
    auto rgb = (composite_over(clips.to(torch::kFloat64), 2, background_) * 255).round().clamp(0, 255);  // uint8 values
    const int64_t t = rgb.size(1);
    auto mae = (rgb.slice(1, 1) - rgb.slice(1, 0, t - 1)).abs().flatten(2).mean(2);  // [B, T-1]
    return (255 - mae.mean(1)) / 255;
  }

  bool uses_real_set() const override { return true; }

  void update_real(const std::vector<Sticker>& real, int64_t) override {
    for (const auto& r : real) {
      const auto clip = reference_clip(r);
      if (clip.size(1) >= 2) reference_.add(scores(clip));
    }
  }
  MetricState real_state() const override {
    MetricState s;
    reference_.save(s, "reference");
    return s;
  }
  void load_real_state(const MetricState& s) override {
    reference_ = {};
    reference_.merge(s, "reference");
  }

  void update(const torch::Tensor& generated, const std::vector<Sticker>&, int64_t) override { generated_.add(scores(generated)); }
  MetricState state() const override {
    MetricState s;
    generated_.save(s, "generated");
    return s;
  }
  void merge(const MetricState& s) override { generated_.merge(s, "generated"); }

  std::vector<MetricValue> result() override {
    if (generated_.count == 0) throw data_error("temporal_flickering: no clips were evaluated");
    return {{"temporal_flickering", generated_.mean(), true}, {"temporal_flickering.reference", reference_.mean(), true}};
  }

 private:
  std::array<double, 3> background_{};
  ClipMean generated_, reference_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "temporal_flickering", "1.0.0", "VBench temporal flickering: (255 - mean |frame[t+1] - frame[t]|) / 255 on uint8 RGB",
    std::vector<asg::ParamSpec>{
        asg::int_list_param("background", {255, 255, 255}, "RGB the stickers are composited over before scoring")
            .range(0, 255)
            .length(3, 3),
    },
    [](const asg::Params& p, const asg::MetricContext& ctx) {
      return std::make_shared<asg::metrics::TemporalFlickering>(p, ctx);
    }))
