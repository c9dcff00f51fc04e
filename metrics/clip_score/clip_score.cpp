// clip_score: how well generated stickers match their prompts in CLIP space, and how steady their CLIP
// content is over time. From a user-supplied CLIP TorchScript file with OpenAI CLIP's interface
// (encode_image, encode_text; see docs/metrics.md for the export) and its BPE merges file.
//
// - Frames: alpha composited over `background` (part of the protocol), uint8, then OpenAI CLIP's own
//   preprocessing: Pillow-exact bicubic Resize of the short side to image_size, CenterCrop, CLIP's mean/std.
// - Prompts: OpenAI's clip.tokenize (asg/text/clip_tokenizer.h: 77 tokens, truncated).
// - clip_score: over every (clip, frame) pair, s = cos(E_image(frame), E_text(prompt)) of L2-normalised
//   features; scale = "torchmetrics" reports 100 * max(mean s, 0) (torchmetrics CLIPScore: the clamp is on
//   the mean, not per sample), "raw" the mean cosine itself (CLIPSIM as video papers report it).
// - clip_score.temporal_consistency: per clip, the mean over t >= 1 of max(0, cos(f_t, f_{t-1})) of its
//   frames' image features, then the mean over clips (EditVerse's CLIP temporal consistency).
// - *.reference / *_reference: the same for the protocol's real set with its own captions (cached).
#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/kinds/metric.h"
#include "asg/nn/torchscript.h"
#include "asg/plugin.h"
#include "asg/text/clip_tokenizer.h"
#include "clip_stats.h"
#include "extractor.h"

namespace asg::metrics {
namespace {

constexpr const char* kInterface =
    "encode_image(pixels: Tensor[N, 3, S, S] CLIP-normalised) -> Tensor[N, D] and encode_text(tokens: Tensor[N, 77] "
    "int64) -> Tensor[N, D], OpenAI CLIP's methods exported for CPU float32";

// Sums over (clip, frame) pairs and clips: what state() carries.
struct ClipSums {
  ClipMean pair_cosine;   // one value per (clip, frame)
  ClipMean consistency;   // one value per clip
  void save(MetricState& s, const std::string& prefix) const {
    pair_cosine.save(s, prefix + "cosine");
    consistency.save(s, prefix + "consistency");
  }
  void merge(const MetricState& s, const std::string& prefix) {
    pair_cosine.merge(s, prefix + "cosine");
    consistency.merge(s, prefix + "consistency");
  }
};

class ClipScore final : public Metric {
 public:
  ClipScore(const Params& p, const MetricContext& ctx)
      : image_size_(p.integer("image_size")),
        batch_size_(p.integer("batch_size")),
        raw_(p.str("scale") == "raw"),
        background_(background_rgb(p.integers("background"))),
        device_(ctx.device),
        tokenizer_(ClipTokenizer::from_merges_file(p.str("merges"))),
        model_(load_torchscript(p.str("model"), p.str("sha256"), "CLIP model", kInterface)) {
    for (const char* method : {"encode_image", "encode_text"})
      if (!model_.find_method(method))
        throw config_error(fmt::format("{}: has no method {}(): not the CLIP interface ({})", p.str("model"), method, kInterface));
    model_.eval();
    model_.to(device_);
  }

  bool uses_real_set() const override { return true; }
  void update_real(const std::vector<Sticker>& real, int64_t first_index) override {
    for (size_t i = 0; i < real.size(); ++i)
      score(reference_clip(real[i])[0], real[i].caption, "real clip", first_index + static_cast<int64_t>(i), reference_);
  }
  MetricState real_state() const override {
    MetricState s;
    reference_.save(s, "");
    return s;
  }
  void load_real_state(const MetricState& s) override {
    reference_ = {};
    reference_.merge(s, "");
  }

  void update(const torch::Tensor& generated, const std::vector<Sticker>& prompts, int64_t first_index) override {
    if (generated.size(0) != static_cast<int64_t>(prompts.size()))
      throw internal_error("clip_score: clips and prompts differ in number");
    for (int64_t i = 0; i < generated.size(0); ++i)
      score(generated[i], prompts[static_cast<size_t>(i)].caption, "generated clip", first_index + i, generated_);
  }
  MetricState state() const override {
    MetricState s;
    generated_.save(s, "");
    return s;
  }
  void merge(const MetricState& s) override { generated_.merge(s, ""); }

  std::vector<MetricValue> result() override {
    if (generated_.pair_cosine.count == 0) throw data_error("clip_score: no clips were evaluated");
    auto reported = [&](const ClipMean& cosine) { return raw_ ? cosine.mean() : 100.0 * std::max(cosine.mean(), 0.0); };
    return {{"clip_score", reported(generated_.pair_cosine), true},
            {"clip_score.temporal_consistency", generated_.consistency.mean(), true},
            {"clip_score.reference", reported(reference_.pair_cosine), true},
            {"clip_score.temporal_consistency_reference", reference_.consistency.mean(), true}};
  }

 private:
  // One clip [T, 4, H, W] against its prompt, into `sums`.
  void score(const torch::Tensor& clip, const std::string& caption, const char* what, int64_t index, ClipSums& sums) {
    c10::InferenceMode inference;
    const int64_t t = clip.size(0);
    const auto rgb = protocol_video(clip, t, t, 1, background_).permute({1, 2, 3, 0}).to(torch::kUInt8);  // [T, H, W, 3]
    std::vector<torch::Tensor> pixels;
    for (int64_t f = 0; f < t; ++f) pixels.push_back(clip_preprocess(rgb[f], image_size_));
    const auto images = torch::stack(pixels);
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0; start < t; start += batch_size_)
      parts.push_back(call("encode_image", images.slice(0, start, std::min(t, start + batch_size_)).to(device_)));
    const auto image_features = normalised(torch::cat(parts), what, index);  // [T, D]
    const auto tokens = torch::tensor(tokenizer_.tokenize(caption, 77, /*truncate=*/true), torch::kLong).unsqueeze(0);
    const auto text_feature = normalised(call("encode_text", tokens.to(device_)), what, index);  // [1, D]
    if (text_feature.size(1) != image_features.size(1))
      throw config_error(fmt::format("CLIP model: encode_image gives {}-d features but encode_text {}-d ({})",
                                     image_features.size(1), text_feature.size(1), kInterface));
    sums.pair_cosine.add(image_features.matmul(text_feature.t()).squeeze(1));
    if (t > 1)
      sums.consistency.add((image_features.slice(0, 1) * image_features.slice(0, 0, t - 1)).sum(1).clamp_min(0).mean().unsqueeze(0));
  }

  torch::Tensor call(const char* method, const torch::Tensor& input) {
    torch::Tensor out;
    try {
      out = model_.get_method(method)({input}).toTensor();
    } catch (const std::exception& e) {
      throw config_error(fmt::format("CLIP model: {}() failed on {}: {} ({})", method, c10::str(input.sizes()),
                                     std::string(e.what()).substr(0, 300), kInterface));
    }
    if (out.dim() != 2 || out.size(0) != input.size(0))
      throw config_error(fmt::format("CLIP model: {}() returned {} for {}; expected [{}, D] ({})", method, c10::str(out.sizes()),
                                     c10::str(input.sizes()), input.size(0), kInterface));
    return out.to(torch::kCPU).to(torch::kFloat64);
  }

  static torch::Tensor normalised(const torch::Tensor& features, const char* what, int64_t index) {
    if (!torch::isfinite(features).all().item<bool>())
      throw data_error(fmt::format("{} {}: its CLIP features contain NaN or Inf; no score is computed from them", what, index));
    return features / features.norm(2, 1, true).clamp_min(1e-12);
  }

  int64_t image_size_, batch_size_;
  bool raw_;
  std::array<double, 3> background_;
  torch::Device device_;
  ClipTokenizer tokenizer_;
  torch::jit::script::Module model_;
  ClipSums generated_, reference_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "clip_score", "1.1.0",
    "CLIP score / CLIPSIM of frames vs prompt, and CLIP temporal consistency (user-supplied CLIP TorchScript)",
    asg::with_torchscript_model_params(
        "CLIP exported to TorchScript with encode_image / encode_text (docs/metrics.md)",
        {
        asg::path_param("merges", "", "CLIP's BPE merges file (bpe_simple_vocab_16e6.txt or .txt.gz)").must_set(),
        asg::int_param("image_size", 224, "CLIP's input resolution (224; 336 for ViT-L/14@336px)").range(16, 1024),
        asg::string_param("scale", "torchmetrics", "torchmetrics = 100 * max(mean cosine, 0); raw = the mean cosine (CLIPSIM)")
            .one_of({"torchmetrics", "raw"}),
        asg::int_list_param("background", {255, 255, 255}, "RGB the stickers are composited over").range(0, 255).length(3, 3),
        asg::int_param("batch_size", 32, "frames per encode_image call").range(1, 4096),
    }),
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::ClipScore>(p, ctx); }))
