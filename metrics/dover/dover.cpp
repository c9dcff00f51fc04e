// dover: the video-quality column (VQA) of the VSD2M / RDTF tables as DOVER scores it (Wu et al. 2023,
// VQAssessment/DOVER at f1ddc96, evaluate_one_video.py with dover.yml's test settings), from a user-supplied
// TorchScript export of DOVER's network. Neither paper names its VQA evaluator; DOVER is the most common one
// in the video-generation papers around them, and the benchmark definition marks the choice as an assumption.
//
// - Each generated sticker is composited over `background`, quantised to 8 bits (the decoded video DOVER
//   reads), cut into DOVER's technical and aesthetic views (dover_views.h, exact to the reference), and scored
//   by the model: each branch's score map is averaged (the reference's `r.mean()`).
// - dover: the mean over stickers of DOVER's fused score, sigmoid(0.6104 (t - 0.1107) / 0.07355 + 0.3896
//   (a + 0.08285) / 0.03774), in (0, 1), higher is better; dover.technical and dover.aesthetic: the mean raw
//   branch scores.
// - Frames under 32 pixels, where the reference fails, are first enlarged to 32 (dover_views.h); VSD2M's 256
//   never are.
// - Deterministic: every sticker's random fragment offsets come from a generator seeded with `seed`, the
//   reference's torch numbers for torch.manual_seed(seed) before each video.
#include <fmt/format.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "asg/nn/torchscript.h"
#include "asg/plugin.h"
#include "clip_stats.h"
#include "dover_views.h"
#include "extractor.h"

namespace asg::metrics {
namespace {

constexpr const char* kInterface =
    "forward(technical: Tensor[3, 3, 32, 224, 224], aesthetic: Tensor[1, 3, 32, 224, 224]) -> Tuple[Tensor, Tensor], the two "
    "branches' score maps of DOVER's network (docs/metrics.md shows the export)";

class Dover final : public Metric {
 public:
  Dover(const Params& p, const MetricContext& ctx)
      : background_(background_rgb(p.integers("background"))),
        seed_(static_cast<uint64_t>(p.integer("seed"))),
        antialias_(p.boolean("aesthetic_antialias")),
        device_(ctx.device),
        model_(load_torchscript(p.str("model"), p.str("sha256"), "DOVER model", kInterface)),
        model_file_(p.str("model")) {
    const auto& schema = model_.get_method("forward").function().getSchema();
    if (schema.arguments().size() != 3)  // self, technical, aesthetic
      throw config_error(fmt::format("{}: forward takes {} arguments; expected 2 ({})", model_file_, schema.arguments().size() - 1, kInterface));
    model_.eval();
    model_.to(device_);
  }

  void update(const torch::Tensor& generated, const std::vector<Sticker>& prompts, int64_t first_index) override {
    (void)prompts;
    for (int64_t i = 0; i < generated.size(0); ++i) score(generated[i], first_index + i);
  }

  MetricState state() const override {
    return {{"sums", torch::tensor({fused_, technical_, aesthetic_}, torch::kFloat64)}, {"count", torch::tensor({count_}, torch::kFloat64)}};
  }
  void merge(const MetricState& other) override {
    auto sums = other.at("sums");
    fused_ += sums[0].item<double>();
    technical_ += sums[1].item<double>();
    aesthetic_ += sums[2].item<double>();
    count_ += other.at("count")[0].item<double>();
  }

  std::vector<MetricValue> result() override {
    if (count_ == 0) throw data_error("dover: no clips were evaluated");
    return {{"dover", fused_ / count_, true}, {"dover.technical", technical_ / count_, true}, {"dover.aesthetic", aesthetic_ / count_, true}};
  }

 private:
  void score(const torch::Tensor& clip, int64_t index) {
    c10::InferenceMode inference;
    const int64_t t = clip.size(0);
    // [3, T, H, W] 8-bit values -> uint8 [T, H, W, 3], the decoded video.
    const auto video = dover::enlarge_small_frames(protocol_video(clip, t, t, 1, background_).permute({1, 2, 3, 0}).to(torch::kUInt8).contiguous());
    at::Generator generator = at::detail::createCPUGenerator(seed_);
    const auto views = dover::make_views(video, generator, antialias_);
    c10::ivalue::TupleElements outputs;
    try {
      outputs = model_.forward({views.technical.to(device_), views.aesthetic.to(device_)}).toTupleRef().elements();
    } catch (const std::exception& e) {
      throw config_error(fmt::format("{}: forward failed on the views of generated clip {}: {} ({})", model_file_, index,
                                     std::string(e.what()).substr(0, 300), kInterface));
    }
    if (outputs.size() != 2) throw config_error(fmt::format("{}: forward returned {} values; expected 2 ({})", model_file_, outputs.size(), kInterface));
    const double technical = outputs[0].toTensor().to(torch::kCPU, torch::kFloat64).mean().item<double>();
    const double aesthetic = outputs[1].toTensor().to(torch::kCPU, torch::kFloat64).mean().item<double>();
    if (!std::isfinite(technical) || !std::isfinite(aesthetic))
      throw data_error(fmt::format("generated clip {}: DOVER's scores are not finite (technical {}, aesthetic {})", index, technical, aesthetic));
    technical_ += technical;
    aesthetic_ += aesthetic;
    fused_ += dover::fuse(technical, aesthetic);
    count_ += 1;
  }

  std::array<double, 3> background_;
  uint64_t seed_;
  bool antialias_;
  torch::Device device_;
  torch::jit::script::Module model_;
  std::string model_file_;
  double fused_ = 0, technical_ = 0, aesthetic_ = 0, count_ = 0;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "dover", "1.0.0",
    "video quality (VQA) as DOVER scores it: technical and aesthetic views exact to the reference, fused score in (0, 1), from a "
    "user-supplied TorchScript export of DOVER",
    asg::with_torchscript_model_params(
        "TorchScript export of DOVER's network (forward(technical, aesthetic) -> (score map, score map))",
        {
        asg::int_list_param("background", {255, 255, 255}, "RGB the stickers are composited over before scoring").range(0, 255).length(3, 3),
        asg::int_param("seed", 0, "seed of each sticker's random fragment offsets (torch.manual_seed in the reference)").range(0, 1e15),
        asg::bool_param("aesthetic_antialias", false,
                        "antialias the aesthetic view's resize: false = torchvision 0.14, which DOVER pins; true = torchvision >= 0.17"),
    }),
    [](const asg::Params& p, const asg::MetricContext& ctx) { return std::make_shared<asg::metrics::Dover>(p, ctx); }))
