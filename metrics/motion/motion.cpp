// motion: how much generated stickers move, so that frozen, motionless outputs show on the leaderboard
// (a still clip is perfect for temporal_flickering and for many per-frame scores).
//
// On premultiplied RGBA in [0, 1] (colour under transparent pixels cannot matter; alpha changes count):
//   magnitude      mean over clips of the mean absolute change between consecutive frames
//   diversity      mean over clips of the mean absolute difference over all frame pairs i < j (a loop that
//                  returns to its start still has diverse frames)
//   frozen_fraction  share of generated clips whose magnitude is below `frozen_below`
// The *_reference keys are the same statistics of the protocol's real set (the eval split's stickers, their
// real frames only; cached with the protocol), the level the data itself moves at.
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "clip_stats.h"

namespace asg::metrics {
namespace {

// [B] mean absolute difference over all frame pairs i < j.
torch::Tensor pairwise_diversity(const torch::Tensor& premultiplied_clips) {
  const int64_t t = premultiplied_clips.size(1);
  auto total = torch::zeros({premultiplied_clips.size(0)}, torch::kFloat64);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = i + 1; j < t; ++j) total += frame_change(premultiplied_clips, i, j);
  return total / static_cast<double>(t * (t - 1) / 2);
}

class Motion final : public Metric {
 public:
  Motion(const Params& p, const MetricContext& ctx) : frozen_below_(p.real("frozen_below")) {
    if (ctx.data.frames < 2)
      throw config_error(fmt::format("motion needs clips of at least 2 frames; dataset '{}' has {}", ctx.dataset_name, ctx.data.frames));
  }

  bool uses_real_set() const override { return true; }

  void update_real(const std::vector<Sticker>& real, int64_t) override {
    for (const auto& r : real) {
      const auto y = premultiplied(reference_clip(r));
      if (y.size(1) < 2) continue;  // a single real frame has no motion to measure
      reference_magnitude_.add(step_changes(y).mean(1));
      reference_diversity_.add(pairwise_diversity(y));
    }
  }
  MetricState real_state() const override {
    MetricState s;
    reference_magnitude_.save(s, "magnitude");
    reference_diversity_.save(s, "diversity");
    return s;
  }
  void load_real_state(const MetricState& s) override {
    reference_magnitude_ = {};
    reference_diversity_ = {};
    reference_magnitude_.merge(s, "magnitude");
    reference_diversity_.merge(s, "diversity");
  }

  void update(const torch::Tensor& generated, const std::vector<Sticker>&, int64_t) override {
    const auto x = premultiplied(generated);
    const auto magnitude = step_changes(x).mean(1);
    magnitude_.add(magnitude);
    diversity_.add(pairwise_diversity(x));
    frozen_.add((magnitude < frozen_below_).to(torch::kFloat64));
  }
  MetricState state() const override {
    MetricState s;
    magnitude_.save(s, "magnitude");
    diversity_.save(s, "diversity");
    frozen_.save(s, "frozen");
    return s;
  }
  void merge(const MetricState& s) override {
    magnitude_.merge(s, "magnitude");
    diversity_.merge(s, "diversity");
    frozen_.merge(s, "frozen");
  }

  std::vector<MetricValue> result() override {
    if (magnitude_.count == 0) throw data_error("motion: no clips were evaluated");
    return {{"motion.magnitude", magnitude_.mean(), true},
            {"motion.diversity", diversity_.mean(), true},
            {"motion.frozen_fraction", frozen_.mean(), false},
            {"motion.magnitude_reference", reference_magnitude_.mean(), true},
            {"motion.diversity_reference", reference_diversity_.mean(), true}};
  }

 private:
  double frozen_below_;
  ClipMean magnitude_, diversity_, frozen_, reference_magnitude_, reference_diversity_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "motion", "1.0.0", "how much generated stickers move: frame-change magnitude, frame diversity, share of frozen clips",
    std::vector<asg::ParamSpec>{
        asg::float_param("frozen_below", 0.002,
                         "a clip whose mean consecutive-frame change (premultiplied RGBA in [0, 1]) is below this counts as "
                         "frozen (0.002 is about half a grey level over the whole frame)")
            .range(0, 1),
    },
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::Motion>(p, ctx); }))
