// alpha_flicker: whether a sticker's transparency flickers: alpha that appears and disappears from frame to
// frame (a shimmering outline, holes blinking) instead of changing steadily as the sticker moves or fades.
// Few video metrics look at alpha at all (ILDiff, arXiv 2412.20901, is the anchor for why it matters).
//
// For every pixel and every three consecutive frames, with d1 = a[t] - a[t-1] and d2 = a[t+1] - a[t]:
//   reversal = min(|d1|, |d2|) if d1 and d2 have opposite signs, else 0     (the change was undone)
//   change   = max(|d1|, |d2|)
// Per clip: sum of reversals / sum of changes over the (pixel, t) where change > `min_change` (0 when alpha
// never changes). 0: every alpha change is monotone over three frames (motion, fades); 1: every change is
// undone at once (pure flicker). alpha_flicker is the mean over generated clips (lower is better);
// alpha_flicker.reference the same for the protocol's real set (its real frames only). A thin part moving
// one pixel per frame reads as flicker too: at the sticker's frame rate it looks like it.
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "clip_stats.h"

namespace asg::metrics {
namespace {

class AlphaFlicker final : public PerClipMeanMetric {
 public:
  AlphaFlicker(const Params& p, const MetricContext& ctx)
      : PerClipMeanMetric("alpha_flicker", false, 3, ctx), min_change_(p.real("min_change")) {}

 protected:
  // [B, T, 4, H, W] -> [B]
  torch::Tensor per_clip(const torch::Tensor& clips) const override {
    const auto alpha = clips.select(2, 3).to(torch::kFloat64);  // [B, T, H, W]
    const int64_t t = alpha.size(1);
    const auto d = alpha.slice(1, 1) - alpha.slice(1, 0, t - 1);  // [B, T-1, H, W]
    const auto d1 = d.slice(1, 0, t - 2), d2 = d.slice(1, 1);
    const auto change = torch::maximum(d1.abs(), d2.abs());
    const auto counted = change > min_change_;
    const auto reversal = torch::where((d1 * d2 < 0) & counted, torch::minimum(d1.abs(), d2.abs()), torch::zeros_like(change));
    const auto changes = torch::where(counted, change, torch::zeros_like(change)).flatten(1).sum(1);
    return torch::where(changes > 0, reversal.flatten(1).sum(1) / changes.clamp_min(1e-300), torch::zeros_like(changes));
  }

 private:
  double min_change_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "alpha_flicker", "1.0.0", "share of alpha changes undone the next frame (0 = steady motion or fades, 1 = flicker)",
    std::vector<asg::ParamSpec>{
        asg::float_param("min_change", 0.02, "alpha changes at or below this (on [0, 1]) are noise and not counted").range(0, 1),
    },
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::AlphaFlicker>(p, ctx); }))
