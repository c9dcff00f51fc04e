// loop_seam: stickers loop, so the jump from the last frame back to the first should look like any other
// step of the animation (Meta's animated stickers, arXiv 2402.06088, treat looping as a quality target).
//
// Per clip, on premultiplied RGBA in [0, 1]:
//   seam ratio = mean |frame[T-1] - frame[0]|  /  max(mean over t of mean |frame[t+1] - frame[t]|, floor)
// 1 means the loop point is as smooth as a typical step; a clip that drifts away without returning scores
// about T-1. `floor` keeps a still clip (seam 0, steps 0) at 0 instead of 0/0: motion.frozen_fraction is
// what flags still clips. loop_seam is the mean over generated clips (lower is better);
// loop_seam.reference the same for the protocol's real set (its real frames only).
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "clip_stats.h"

namespace asg::metrics {
namespace {

class LoopSeam final : public PerClipMeanMetric {
 public:
  // At least 3 frames: with 2 the seam is the only step.
  LoopSeam(const Params& p, const MetricContext& ctx) : PerClipMeanMetric("loop_seam", false, 3, ctx), floor_(p.real("floor")) {}

 protected:
  torch::Tensor per_clip(const torch::Tensor& clips) const override {
    const auto x = premultiplied(clips);
    const auto typical = step_changes(x).mean(1).clamp_min(floor_);
    return frame_change(x, x.size(1) - 1, 0) / typical;
  }

 private:
  double floor_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "loop_seam", "1.0.0", "how the last-to-first frame change compares with a typical frame-to-frame change (1 = seamless)",
    std::vector<asg::ParamSpec>{
        asg::float_param("floor", 1e-4, "smallest typical step divided by (keeps a still clip at 0 instead of 0/0)").range(1e-12, 1),
    },
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::LoopSeam>(p, ctx); }))
