// inception_score: the Inception Score (Salimans et al. 2016) of the generated frames, with StyleGAN-V's
// convention: class probabilities from NVIDIA's TorchScript `inception-2015-12-05.pt` called with
// no_output_bias=True (its 1008-way softmax without the output bias) on uint8-valued [N, 3, H, W] frames, in
// generation order cut into `splits` chunks (10 by default), mean ± std over the chunks. Every frame of every
// generated clip is a sample; alpha is composited over `background` first. Only the generated side: the score
// needs no real set. The number is IS only with the real Inception file (path + sha256); the test fixtures have
// the interface but random weights.
#include "inception_score.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/error.h"
#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "asg/nn/torchscript.h"
#include "extractor.h"

namespace asg::metrics {

InceptionScore inception_score_of(const torch::Tensor& probs, int64_t splits) {
  const int64_t n = probs.size(0);
  if (n < splits)
    throw config_error(fmt::format("inception_score: {} generated frames cannot be cut into {} splits (valid: at least as many "
                                   "frames as splits; lower `splits` or generate more)",
                                   n, splits));
  const torch::Tensor p = probs.to(torch::kFloat64);
  std::vector<double> scores;
  for (int64_t i = 0; i < splits; ++i) {
    const torch::Tensor part = p.slice(0, i * n / splits, (i + 1) * n / splits);
    const torch::Tensor marginal = part.mean(0, /*keepdim=*/true);
    const torch::Tensor kl = (torch::xlogy(part, part) - torch::xlogy(part, marginal.expand_as(part))).sum(1);
    scores.push_back(std::exp(kl.mean().item<double>()));
  }
  InceptionScore out;
  for (double s : scores) out.mean += s / static_cast<double>(splits);
  for (double s : scores) out.std += (s - out.mean) * (s - out.mean) / static_cast<double>(splits);
  out.std = std::sqrt(out.std);
  return out;
}

namespace {

constexpr const char* kInterface =
    "forward(img: Tensor[N, 3, H, W] in [0, 255], return_features: bool, no_output_bias: bool, ...) -> Tensor[N, classes] "
    "of probabilities, NVIDIA's inception-2015-12-05.pt";

class InceptionScoreMetric final : public Metric {
 public:
  InceptionScoreMetric(const Params& p, const MetricContext& ctx)
      : splits_(p.integer("splits")),
        batch_size_(p.integer("batch_size")),
        background_(background_rgb(p.integers("background"))),
        inception_(p.str("model"), p.str("sha256"), "Inception classifier", kInterface,
                   {{"return_features", false}, {"no_output_bias", true}}, ctx.device) {}

  void update(const torch::Tensor& generated, const std::vector<Sticker>&, int64_t first_index) override {
    const int64_t frames = generated.size(1);
    std::vector<torch::Tensor> images;
    for (int64_t i = 0; i < generated.size(0); ++i)
      images.push_back(protocol_video(generated[i], frames, frames, 1, background_).permute({1, 0, 2, 3}));
    const torch::Tensor probs = inception_.features(torch::cat(images), batch_size_);
    check_probabilities(probs, first_index, frames);
    probs_.push_back(probs);
    // Each frame's place in generation order, so that merged ranks cut the same chunks as one process.
    order_.push_back(torch::arange(first_index * frames, (first_index + generated.size(0)) * frames, torch::kInt64));
  }

  MetricState state() const override {
    if (probs_.empty()) return {};
    return {{"probs", torch::cat(probs_)}, {"order", torch::cat(order_)}};
  }
  void merge(const MetricState& other) override {
    if (other.empty()) return;
    probs_.push_back(other.at("probs"));
    order_.push_back(other.at("order"));
  }

  std::vector<MetricValue> result() override {
    if (probs_.empty()) throw config_error("inception_score: no generated frames were given");
    const torch::Tensor order = torch::cat(order_);
    const torch::Tensor sorted = torch::cat(probs_).index_select(0, std::get<1>(order.sort()));
    const InceptionScore is = inception_score_of(sorted, splits_);
    return {{"inception_score", is.mean, true}, {"inception_score.std", is.std, false}};
  }

 private:
  // Rows that are not probability vectors mean a file that gives features or logits: refused, naming the file.
  void check_probabilities(const torch::Tensor& probs, int64_t first_index, int64_t frames) const {
    const torch::Tensor sums = probs.sum(1);
    const torch::Tensor bad = (probs < 0).any(1) | ((sums - 1).abs() > 1e-3) | ~torch::isfinite(sums);
    if (!bad.any().item<bool>()) return;
    const int64_t row = bad.nonzero()[0][0].item<int64_t>();
    throw config_error(fmt::format("{}: row {} (generated clip {}, frame {}) is not a probability vector (sum {:.6g}); "
                                   "inception_score needs the 1008-way softmax NVIDIA's file returns with no_output_bias=True",
                                   inception_.file().string(), row, first_index + row / frames, row % frames,
                                   sums[row].item<double>()));
  }

  int64_t splits_, batch_size_;
  std::array<double, 3> background_;
  TorchScriptExtractor inception_;
  std::vector<torch::Tensor> probs_, order_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "inception_score", "1.0.0",
    "Inception Score of the generated frames: NVIDIA Inception (user-supplied TorchScript) class probabilities, StyleGAN-V splits",
    asg::with_torchscript_model_params(
        "NVIDIA's inception-2015-12-05.pt (see docs/metrics.md for where to get it)",
        {
        asg::int_param("splits", 10, "chunks of the frames in generation order; IS is their mean (StyleGAN-V, tfgan: 10)")
            .range(1, 1000),
        asg::int_list_param("background", {255, 255, 255}, "RGB the stickers are composited over").range(0, 255).length(3, 3),
        asg::int_param("batch_size", 64, "frames per Inception forward").range(1, 4096),
    }),
    [](const asg::Params& p, const asg::MetricContext& ctx) {
      return std::make_shared<asg::metrics::InceptionScoreMetric>(p, ctx);
    }))
