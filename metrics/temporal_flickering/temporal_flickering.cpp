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

class TemporalFlickering final : public PerClipMeanMetric {
 public:
  TemporalFlickering(const Params& p, const MetricContext& ctx)
      : PerClipMeanMetric("temporal_flickering", true, 2, ctx), background_(background_rgb(p.integers("background"))) {}

 protected:
  // [B, T, 4, H, W] straight RGBA in [0, 1] -> [B] VBench scores.
  torch::Tensor per_clip(const torch::Tensor& clips) const override {
    auto rgb = (composite_over(clips.to(torch::kFloat64), 2, background_) * 255).round().clamp(0, 255);  // uint8 values
    const int64_t t = rgb.size(1);
    auto mae = (rgb.slice(1, 1) - rgb.slice(1, 0, t - 1)).abs().flatten(2).mean(2);  // [B, T-1]
    return (255 - mae.mean(1)) / 255;
  }

 private:
  std::array<double, 3> background_{};
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
