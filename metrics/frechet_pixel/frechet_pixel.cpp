// frechet_pixel: Fréchet distance between generated and reference clips in a fixed, weight-free
// feature space. It is NOT FVD (no I3D network) and its values are not comparable with FVD numbers.
//
// Feature of a clip (straight RGBA [T, 4, H, W] in [0, 1]):
//   1. premultiply colour by alpha (so the colour stored under transparent pixels cannot matter);
//   2. appearance: every frame area-averaged to pool x pool cells, 4 channels  -> T * 4 * pool^2
//   3. motion: |frame[t+1] - frame[t]| averaged over channels, then pooled     -> (T-1) * pool^2
// Statistics and distance: asg::frechet (streamed float64 moments, eigh route), covariance convention a
// parameter. The real side is the protocol's real set ([eval] num_real clips of the eval split), cached.
// As with every Fréchet metric, the value is biased upwards at small N: compare runs only at equal
// [eval] num_samples.
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "asg/media/alpha.h"
#include "asg/plugin.h"
#include "frechet_metric.h"

namespace asg::metrics {
namespace {

class FrechetPixel final : public FrechetFeatureMetric {
 public:
  FrechetPixel(const Params& p, const MetricContext& ctx)
      : FrechetFeatureMetric("frechet_pixel", frechet::parse_covariance(p.str("covariance"))), pool_(p.integer("pool")) {
    if (ctx.data.height % pool_ != 0 || ctx.data.width % pool_ != 0)
      throw config_error(fmt::format("pool = {} must divide the frame size {}x{} (exact area averages)",
                                     pool_, ctx.data.height, ctx.data.width));
  }

  torch::Tensor describe(const torch::Tensor& clips) const {  // [B, T, 4, H, W] -> [B, d]
    auto x = premultiply(clips.to(torch::kFloat64), 2);
    const int64_t b = x.size(0), t = x.size(1), h = x.size(3), w = x.size(4);
    auto pooled = torch::adaptive_avg_pool2d(x.reshape({b * t, 4, h, w}), {pool_, pool_}).reshape({b, -1});
    std::vector<torch::Tensor> parts = {pooled};
    if (t > 1) {
      auto diff = (x.slice(1, 1) - x.slice(1, 0, t - 1)).abs().mean(2);  // [B, T-1, H, W]
      parts.push_back(torch::adaptive_avg_pool2d(diff, {pool_, pool_}).reshape({b, -1}));
    }
    return torch::cat(parts, 1);
  }

  void add_real(const std::vector<Sticker>& real, int64_t first_index, frechet::FeatureMoments& into) override {
    std::vector<torch::Tensor> frames;
    for (const auto& r : real) frames.push_back(r.frames);
    into.add(describe(torch::stack(frames)), "real clip", first_index);
  }
  void add_generated(const torch::Tensor& generated, int64_t first_index, frechet::FeatureMoments& into) override {
    into.add(describe(generated), "generated clip", first_index);
  }

 private:
  int64_t pool_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "frechet_pixel", "1.0.0", "Fréchet distance of weight-free pooled RGBA + frame-difference features (not FVD)",
    std::vector<asg::ParamSpec>{
        asg::int_param("pool", 4, "area-pooling grid per frame (pool x pool cells)").range(1, 64),
        asg::enum_param("covariance", asg::frechet::Covariance::Unbiased, asg::frechet::covariance_names(),
                        "covariance normalisation: unbiased (N-1) or biased (N)"),
    },
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::FrechetPixel>(p, ctx); }))
