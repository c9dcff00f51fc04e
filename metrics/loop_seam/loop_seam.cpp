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

class LoopSeam final : public Metric {
 public:
  LoopSeam(const Params& p, const MetricContext& ctx) : floor_(p.real("floor")) {
    if (ctx.data.frames < 3)
      throw config_error(fmt::format("loop_seam needs clips of at least 3 frames (with 2 the seam is the only step); "
                                     "dataset '{}' has {}",
                                     ctx.dataset_name, ctx.data.frames));
  }

  torch::Tensor seam_ratio(const torch::Tensor& clips) const {
    const auto x = premultiplied(clips);
    const auto typical = step_changes(x).mean(1).clamp_min(floor_);
    return frame_change(x, x.size(1) - 1, 0) / typical;
  }

  bool uses_real_set() const override { return true; }

  void update_real(const std::vector<Sticker>& real, int64_t) override {
    for (const auto& r : real) {
      const auto clip = reference_clip(r);
      if (clip.size(1) >= 3) reference_.add(seam_ratio(clip));
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

  void update(const torch::Tensor& generated, const std::vector<Sticker>&, int64_t) override { generated_.add(seam_ratio(generated)); }
  MetricState state() const override {
    MetricState s;
    generated_.save(s, "generated");
    return s;
  }
  void merge(const MetricState& s) override { generated_.merge(s, "generated"); }

  std::vector<MetricValue> result() override {
    if (generated_.count == 0) throw data_error("loop_seam: no clips were evaluated");
    return {{"loop_seam", generated_.mean(), false}, {"loop_seam.reference", reference_.mean(), false}};
  }

 private:
  double floor_;
  ClipMean generated_, reference_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "loop_seam", "1.0.0", "how the last-to-first frame change compares with a typical frame-to-frame change (1 = seamless)",
    std::vector<asg::ParamSpec>{
        asg::float_param("floor", 1e-4, "smallest typical step divided by (keeps a still clip at 0 instead of 0/0)").range(1e-12, 1),
    },
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::LoopSeam>(p, ctx); }))
