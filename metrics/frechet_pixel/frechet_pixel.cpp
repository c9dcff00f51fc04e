// frechet_pixel: Fréchet distance between generated and reference clips in a fixed, weight-free
// feature space. It is NOT FVD (no I3D network) and its values are not comparable with FVD numbers.
//
// Feature of a clip (straight RGBA [T, 4, H, W] in [0, 1]):
//   1. premultiply colour by alpha (so the colour stored under transparent pixels cannot matter);
//   2. appearance: every frame area-averaged to pool x pool cells, 4 channels  -> T * 4 * pool^2
//   3. motion: |frame[t+1] - frame[t]| averaged over channels, then pooled     -> (T-1) * pool^2
// Statistics and distance: asg::frechet (float64, eigh route), covariance convention a parameter.
// As with every Fréchet metric, the value is biased upwards at small N: compare runs only at equal
// [eval] num_samples.
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "asg/media/alpha.h"
#include "asg/plugin.h"
#include "frechet.h"

namespace asg::metrics {
namespace {

class FrechetPixel final : public Metric {
 public:
  FrechetPixel(const Params& p, const MetricContext& ctx)
      : pool_(p.integer("pool")), convention_(frechet::parse_covariance(p.str("covariance"))) {
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

  void update(const torch::Tensor& generated, const std::vector<Sticker>& references) override {
    fake_.push_back(describe(generated));
    std::vector<torch::Tensor> frames;
    for (const auto& r : references) frames.push_back(r.frames);
    real_.push_back(describe(torch::stack(frames)));
  }

  std::vector<MetricValue> compute() override {
    if (fake_.empty()) throw data_error("frechet_pixel: no clips were evaluated");
    auto fake = frechet::gaussian_stats(torch::cat(fake_), convention_);
    auto real = frechet::gaussian_stats(torch::cat(real_), convention_);
    return {MetricValue{"frechet_pixel", frechet::frechet_distance(real, fake), false}};
  }

 private:
  int64_t pool_;
  frechet::Covariance convention_;
  std::vector<torch::Tensor> fake_, real_;
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
