// fvd: Fréchet Video Distance with the StyleGAN-V convention (universome/stylegan-v, metrics/
// frechet_video_distance.py): features from the user-supplied TorchScript I3D `i3d_torchscript.pt` called
// with rescale=True, resize=True, return_features=True on uint8-valued [B, 3, T, H, W] clips; the 400-d
// Kinetics logits; the Fréchet distance of float64 statistics with StyleGAN-V's biased (N) covariance by
// default. The number is FVD only with the real I3D file (path + sha256); the test fixtures have the
// interface but random weights.
//
// Stickers: alpha is composited over `background` (part of the protocol); each clip becomes `frames`
// frames sampled every `stride`-th from its start, a sticker with fewer real frames looping from its first
// (the same rule for the real and the generated set; I3D needs at least 9 frames). Real side: the protocol's
// real set, cached per protocol by the core.
#include <fmt/format.h>
#include <torch/torch.h>

#include <optional>

#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "asg/nn/torchscript.h"
#include "extractor.h"
#include "frechet_metric.h"

namespace asg::metrics {
namespace {

constexpr const char* kInterface =
    "forward(x: Tensor[B, 3, T, H, W] in [0, 255], rescale: bool, resize: bool, return_features: bool) -> Tensor[B, d], "
    "the StyleGAN-V i3d_torchscript.pt";

class Fvd final : public FrechetFeatureMetric {
 public:
  Fvd(const Params& p, const MetricContext& ctx)
      : FrechetFeatureMetric("fvd", frechet::parse_covariance(p.str("covariance"))),
        frames_(p.integer("frames")),
        stride_(p.integer("stride")),
        batch_size_(p.integer("batch_size")),
        background_(background_rgb(p.integers("background"))),
        i3d_(p.str("model"), p.str("sha256"), "I3D feature extractor", kInterface,
             {{"rescale", true}, {"resize", true}, {"return_features", true}}, ctx.device) {}

  // [B, T, 4, H, W] clips with their real frame counts -> [B, d]
  torch::Tensor describe(const std::vector<torch::Tensor>& clips, const std::vector<int64_t>& valid) {
    std::vector<torch::Tensor> videos;
    for (size_t i = 0; i < clips.size(); ++i) videos.push_back(protocol_video(clips[i], valid[i], frames_, stride_, background_));
    return i3d_.features(torch::stack(videos), batch_size_);
  }

  void add_real(const std::vector<Sticker>& real, int64_t first_index, frechet::FeatureMoments& into) override {
    std::vector<torch::Tensor> clips;
    std::vector<int64_t> valid;
    for (const auto& s : real) {
      clips.push_back(s.frames);
      valid.push_back(valid_frame_count(s));
    }
    into.add(describe(clips, valid), "real clip", first_index);
  }
  void add_generated(const torch::Tensor& generated, int64_t first_index, frechet::FeatureMoments& into) override {
    std::vector<torch::Tensor> clips;
    for (int64_t i = 0; i < generated.size(0); ++i) clips.push_back(generated[i]);
    into.add(describe(clips, std::vector<int64_t>(clips.size(), generated.size(1))), "generated clip", first_index);
  }

 private:
  int64_t frames_, stride_, batch_size_;
  std::array<double, 3> background_;
  TorchScriptExtractor i3d_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "fvd", "1.0.0", "Fréchet Video Distance, StyleGAN-V convention: I3D (user-supplied TorchScript) logits, biased covariance",
    asg::with_torchscript_model_params(
        "the StyleGAN-V i3d_torchscript.pt (see docs/metrics.md for where to get it)",
        {
        asg::int_param("frames", 16, "frames per clip given to I3D (StyleGAN-V fvd2048_16f: 16; at least 9)").range(9, 1024),
        asg::int_param("stride", 1, "take every stride-th frame (fvd2048_128f_subsample8f: 8)").range(1, 64),
        asg::int_list_param("background", {255, 255, 255}, "RGB the stickers are composited over").range(0, 255).length(3, 3),
        asg::enum_param("covariance", asg::frechet::Covariance::Biased, asg::frechet::covariance_names(),
                        "covariance normalisation: biased (N, StyleGAN-V) or unbiased (N-1)"),
        asg::int_param("batch_size", 16, "clips per I3D forward").range(1, 4096),
    }),
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::Fvd>(p, ctx); }))
