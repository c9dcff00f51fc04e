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
#include "bench_args.h"
#include "hand_written.h"


using asg::bench::HandWritten;
using asg::bench::median;

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"rounds", 6, 1}, {"steps-per-round", 8, 1}, {"threads", 0, 0}});
  if (!args.parse(argc, argv)) return 2;
  const int rounds = args["rounds"], per_round = args["steps-per-round"], threads = args["threads"];
  const bool check = args.check;
  if (threads > 0) torch::set_num_threads(threads);

  auto catalog = asg::PluginCatalog::discover();
  auto dataset = catalog.create<asg::Dataset>("synthetic_stickers", asg::bench::defaults(catalog, "dataset", "synthetic_stickers"));
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
  asg::bench::Model fm = asg::bench::build(catalog, dataset->info());
  asg::DiffusionTrainer framework(fm.text, fm.backbone, asg::NoiseSchedule("cosine", 1000, asg::Prediction::V), options,
                                  torch::Device(torch::kCPU), 7);
  HandWritten hand(asg::bench::build(catalog, dataset->info()), options, 7);

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
