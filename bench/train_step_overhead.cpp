// Benchmark: the framework's training step (asg::DiffusionTrainer::step on plugins loaded through the
// catalog) against the same step written by hand in plain LibTorch, on identical models and batches.
// Both run in this process, interleaved in rounds, so machine noise hits both alike; the report is
// the ratio of median step times. Target: framework overhead <= 2% (ratio <= 1.02).
//
//   asg_bench_train_step [--rounds N] [--steps-per-round N] [--threads N] [--check]
// --check exits 1 when the ratio exceeds the target.
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "asg/kinds/backbone.h"
#include "asg/kinds/dataset.h"
#include "asg/plugin_catalog.h"
#include "asg/trainer.h"

namespace {

struct Model {
  std::shared_ptr<asg::TextEncoder> text;
  std::shared_ptr<asg::Backbone> backbone;
};

asg::Params defaults(const asg::PluginCatalog& c, const std::string& kind, const std::string& name) {
  return asg::default_params(name, c.find(kind, name)->factory.params);
}

Model build(const asg::PluginCatalog& catalog, const asg::DatasetInfo& info) {
  torch::manual_seed(1234);  // identical initial weights for both sides
  Model m;
  m.text = catalog.create<asg::TextEncoder>("word_embedding", defaults(catalog, "text_encoder", "word_embedding"));
  asg::BackboneContext ctx;
  ctx.channels = 4;
  ctx.frames = info.frames;
  ctx.height = info.height;
  ctx.width = info.width;
  ctx.text_dim = m.text->dim();
  auto temporal_params = defaults(catalog, "temporal", "temporal_conv");
  ctx.make_temporal = [&](const asg::TemporalContext& tc) {
    return catalog.create<asg::TemporalModule>("temporal_conv", temporal_params, tc);
  };
  m.backbone = catalog.create<asg::Backbone>("unet3d", defaults(catalog, "backbone", "unet3d"), ctx);
  return m;
}

// The step a researcher would write by hand: same objective, optimizer, clipping, warm-up and EMA.
class HandWritten {
 public:
  HandWritten(Model m, const asg::TrainOptions& o, uint64_t seed)
      : m_(std::move(m)), o_(o), schedule_("cosine", 1000, asg::Prediction::V), gen_(at::detail::createCPUGenerator(seed)) {
    for (auto& p : m_.backbone->parameters()) params_.push_back(p);
    for (auto& p : m_.text->parameters()) params_.push_back(p);
    for (auto& p : params_) ema_.push_back(p.detach().clone());
    opt_ = std::make_unique<torch::optim::AdamW>(params_, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  }
  double step(const torch::Tensor& x0, std::vector<std::string> captions) {
    const int64_t b = x0.size(0);
    auto drop = torch::rand({b}, gen_);
    auto d = drop.accessor<float, 1>();
    for (int64_t i = 0; i < b; ++i)
      if (d[i] < o_.caption_dropout) captions[i].clear();
    auto t = torch::randint(0, 1000, {b}, gen_, torch::kLong);
    auto eps = torch::randn(x0.sizes(), gen_, torch::kFloat);
    auto a = schedule_.alphas_cumprod().index_select(0, t).to(torch::kFloat).view({b, 1, 1, 1, 1});
    auto x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps;
    auto v = a.sqrt() * eps - (1 - a).sqrt() * x0;
    auto out = m_.backbone->forward(x_t, t.to(torch::kFloat), m_.text->encode(captions));
    auto loss = torch::mse_loss(out, v);
    opt_->zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params_, o_.grad_clip);
    double lr = o_.lr * std::min(1.0, static_cast<double>(steps_ + 1) / o_.warmup_steps);
    for (auto& g : opt_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt_->step();
    ++steps_;
    double decay = std::min(o_.ema_decay, (1.0 + steps_) / (10.0 + steps_));
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params_.size(); ++i) ema_[i].mul_(decay).add_(params_[i].detach(), 1 - decay);
    return loss.item<double>();
  }

 private:
  Model m_;
  asg::TrainOptions o_;
  asg::NoiseSchedule schedule_;
  at::Generator gen_;
  std::vector<torch::Tensor> params_, ema_;
  std::unique_ptr<torch::optim::AdamW> opt_;
  int64_t steps_ = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 6, per_round = 8, threads = 0;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (!std::strcmp(argv[i], "--rounds")) rounds = next();
    else if (!std::strcmp(argv[i], "--steps-per-round")) per_round = next();
    else if (!std::strcmp(argv[i], "--threads")) threads = next();
    else if (!std::strcmp(argv[i], "--check")) check = true;
    else {
      fmt::print(stderr, "unknown argument '{}' (valid: --rounds N, --steps-per-round N, --threads N, --check)\n", argv[i]);
      return 2;
    }
  }
  if (rounds < 1 || per_round < 1) {
    fmt::print(stderr, "--rounds and --steps-per-round must be >= 1\n");
    return 2;
  }
  if (threads > 0) torch::set_num_threads(threads);

  auto catalog = asg::PluginCatalog::discover();
  auto dataset = catalog.create<asg::Dataset>("synthetic_stickers", defaults(catalog, "dataset", "synthetic_stickers"));
  std::vector<asg::Sticker> stickers;
  std::vector<std::string> captions;
  for (int64_t i = 0; i < 16; ++i) {
    stickers.push_back(dataset->get(asg::Split::Train, i));
    captions.push_back(stickers.back().caption);
  }
  auto batch = asg::to_model_space(asg::stack_frames(stickers));

  asg::TrainOptions options;
  options.lr = 1e-3;
  options.warmup_steps = 50;
  options.ema_decay = 0.995;
  options.caption_dropout = 0.1;
  options.grad_clip = 1.0;
  Model fm = build(catalog, dataset->info());
  asg::DiffusionTrainer framework(fm.text, fm.backbone, asg::NoiseSchedule("cosine", 1000, asg::Prediction::V), options,
                                  torch::Device(torch::kCPU), 7);
  HandWritten hand(build(catalog, dataset->info()), options, 7);

  // Warm-up (allocator, oneDNN primitive caches), then interleaved rounds.
  for (int i = 0; i < 3; ++i) {
    framework.step(batch, captions);
    hand.step(batch, captions);
  }
  std::vector<double> t_framework, t_hand;
  double loss_f = 0, loss_h = 0;
  for (int r = 0; r < rounds; ++r) {
    bool framework_first = r % 2 == 0;
    for (int side = 0; side < 2; ++side) {
      bool is_framework = (side == 0) == framework_first;
      for (int s = 0; s < per_round; ++s) {
        auto start = std::chrono::steady_clock::now();
        double loss = is_framework ? framework.step(batch, captions).loss : hand.step(batch, captions);
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        (is_framework ? t_framework : t_hand).push_back(ms);
        (is_framework ? loss_f : loss_h) = loss;
      }
    }
  }
  double f = median(t_framework), h = median(t_hand), ratio = f / h;
  fmt::print("train step, unet3d + temporal_conv, batch 16 x 8 x 4 x 16 x 16, {} threads, {} steps each side\n",
             torch::get_num_threads(), t_framework.size());
  fmt::print("  hand-written LibTorch loop : {:8.2f} ms/step (median)\n", h);
  fmt::print("  asg framework step         : {:8.2f} ms/step (median)\n", f);
  fmt::print("  ratio framework/hand       : {:8.4f}  (target <= 1.02)  {}\n", ratio, ratio <= 1.02 ? "OK" : "OVER TARGET");
  fmt::print("  last losses (same math)    : framework {:.5f}, hand {:.5f}\n", loss_f, loss_h);
  return check && ratio > 1.02 ? 1 : 0;
}
