// fid: per-frame Fréchet Inception Distance with the StyleGAN2-ADA / StyleGAN-V convention: features from
// NVIDIA's TorchScript `inception-2015-12-05.pt` called with return_features=True on uint8-valued
// [N, 3, H, W] frames (the network resizes to 299 internally); 2048-d pool3 features; the Fréchet distance
// of float64 statistics, unbiased (N-1, pytorch-fid / clean-fid) covariance by default. Every real frame of
// every clip is a sample (padding frames excluded); alpha is composited over `background` first. The number
// is FID only with the real Inception file (path + sha256); the test fixtures have the interface but random
// weights.
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "asg/nn/torchscript.h"
#include "extractor.h"
#include "frechet_metric.h"

namespace asg::metrics {
namespace {

constexpr const char* kInterface =
    "forward(img: Tensor[N, 3, H, W] in [0, 255], return_features: bool, ...) -> Tensor[N, d], NVIDIA's "
    "inception-2015-12-05.pt";

class Fid final : public FrechetFeatureMetric {
 public:
  Fid(const Params& p, const MetricContext& ctx)
      : FrechetFeatureMetric("fid", frechet::parse_covariance(p.str("covariance"))),
        batch_size_(p.integer("batch_size")),
        background_(background_rgb(p.integers("background"))),
        inception_(p.str("model"), p.str("sha256"), "Inception feature extractor", kInterface, {{"return_features", true}},
                   ctx.device) {}

  // One clip's first `valid` frames as [valid, 3, H, W] uint8-valued images.
  torch::Tensor frames_of(const torch::Tensor& clip, int64_t valid) const {
    return protocol_video(clip, valid, valid, 1, background_).permute({1, 0, 2, 3});
  }

  void add_real(const std::vector<Sticker>& real, int64_t first_index, frechet::FeatureMoments& into) override {
    for (size_t i = 0; i < real.size(); ++i)
      into.add(inception_.features(frames_of(real[i].frames, valid_frame_count(real[i])), batch_size_),
               fmt::format("real clip {}, frame", first_index + static_cast<int64_t>(i)), 0);
  }
  void add_generated(const torch::Tensor& generated, int64_t first_index, frechet::FeatureMoments& into) override {
    std::vector<torch::Tensor> frames;
    for (int64_t i = 0; i < generated.size(0); ++i) frames.push_back(frames_of(generated[i], generated.size(1)));
    const auto features = inception_.features(torch::cat(frames), batch_size_);
    // Rows are clip-major: name the clip of a bad row, not a flat frame index.
    for (int64_t i = 0; i < generated.size(0); ++i)
      into.add(features.slice(0, i * generated.size(1), (i + 1) * generated.size(1)),
               fmt::format("generated clip {}, frame", first_index + i), 0);
  }

 private:
  int64_t batch_size_;
  std::array<double, 3> background_;
  TorchScriptExtractor inception_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "fid", "1.0.0", "per-frame Fréchet Inception Distance: NVIDIA Inception (user-supplied TorchScript) pool3, N-1 covariance",
    asg::with_torchscript_model_params(
        "NVIDIA's inception-2015-12-05.pt (see docs/metrics.md for where to get it)",
        {
        asg::int_list_param("background", {255, 255, 255}, "RGB the stickers are composited over").range(0, 255).length(3, 3),
        asg::enum_param("covariance", asg::frechet::Covariance::Unbiased, asg::frechet::covariance_names(),
                        "covariance normalisation: unbiased (N-1, pytorch-fid) or biased (N, StyleGAN2-ADA)"),
        asg::int_param("batch_size", 64, "frames per Inception forward").range(1, 4096),
    }),
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::Fid>(p, ctx); }))
