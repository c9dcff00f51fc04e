// Benchmark: the staged run pipeline (BatchSource with prefetching -> TrainLoop -> DiffusionTrainer,
// RunRecorder logging to a registry, an atomic final checkpoint) against two loops written by hand, on
// identical models and data:
//   - around the same DiffusionTrainer step: serial data reads, the step, the same final checkpoint, no
//     registry. The ratio is the cost of the stages themselves. Target: <= 2% (ratio <= 1.02).
//   - in plain LibTorch (bench/hand_written.h: torch::optim::AdamW, clip_grad_norm_, EMA per tensor,
//     torch::save at the end), as a researcher would write it. The ratio adds what the framework's step
//     does differently (one flat parameter buffer).
// All run in this process in interleaved rounds with rotating order, so machine noise hits them alike.
//
// Also: the time of one training-state checkpoint (weights, EMA, AdamW moments, RNG, data position;
// written to a temporary file, fsynced, renamed) as a fraction of the training time between two
// checkpoints at the default [train] checkpoint_every.
//
//   asg_bench_pipeline [--rounds N] [--steps-per-round N] [--threads N] [--check]
// --check exits 1 when the ratio exceeds the target.
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstring>

#include "asg/experiment.h"
#include "asg/stages/runtime_settings.h"
#include "asg/stages/recorder.h"
#include "asg/stages/batch_source.h"
#include "asg/stages/train_loop.h"
#include "bench_args.h"
#include "hand_written.h"
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The hand-written loop's data: its own permutation of the train split, read serially.
class HandData {
 public:
  HandData(std::shared_ptr<asg::Dataset> data, int64_t batch) : data_(std::move(data)), batch_(batch), gen_(at::detail::createCPUGenerator(3)) {}
  std::pair<torch::Tensor, std::vector<std::string>> next() {
    std::vector<asg::Sticker> stickers;
    std::vector<std::string> captions;
    for (int64_t i = 0; i < batch_; ++i) {
      if (cursor_ >= static_cast<int64_t>(order_.size())) {
        auto perm = torch::randperm(data_->size(asg::Split::Train), gen_, torch::kLong);
        order_.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + perm.numel());
        cursor_ = 0;
      }
      stickers.push_back(data_->get(asg::Split::Train, order_[cursor_++]));
      captions.push_back(stickers.back().caption);
    }
    return {asg::to_model_space(asg::stack_frames(stickers)), captions};
  }

 private:
  std::shared_ptr<asg::Dataset> data_;
  int64_t batch_;
  at::Generator gen_;
  std::vector<int64_t> order_;
  int64_t cursor_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"rounds", 4, 1}, {"steps-per-round", 25, 1}, {"threads", 0, 0}});
  if (!args.parse(argc, argv)) return 2;
  const int rounds = args["rounds"], per_round = args["steps-per-round"], threads = args["threads"];
  const bool check = args.check;
  const fs::path dir = fs::temp_directory_path() / fmt::format("asg-bench-pipeline-{}", getpid());
  fs::create_directories(dir);

  // The quickstart experiment: its [runtime] settings, [train] options and a recorder to log into.
  asg::PluginCatalog catalog = asg::PluginCatalog::discover();
  asg::Experiment exp = asg::load_experiment(fs::path(ASG_SOURCE_DIR) / "experiments" / "quickstart.toml",
                                             threads > 0 ? std::vector<std::string>{fmt::format("runtime.threads={}", threads)}
                                                         : std::vector<std::string>{},
                                             catalog);
  const asg::RuntimeSettings settings = asg::apply_runtime_settings(exp);
  auto dataset = catalog.create<asg::Dataset>("synthetic_stickers", asg::bench::defaults(catalog, "dataset", "synthetic_stickers"));
  const int64_t batch = exp.train.integer("batch_size");
  asg::TrainOptions options = asg::TrainOptions::from(exp.train);
  const asg::NoiseSchedule schedule("cosine", 1000, asg::Prediction::V);

  asg::bench::Model staged_model = asg::bench::build(catalog, dataset->info());
  asg::DiffusionTrainer trainer(staged_model.text, staged_model.backbone, schedule, options, settings.device, 7);
  asg::RunOptions run_options;
  run_options.registry_path = dir / "registry.sqlite";
  run_options.runs_dir = dir / "runs";
  asg::RunRecorder recorder(exp, run_options, settings);
  asg::LoaderOptions loader;
  loader.batch_size = batch;
  loader.order_seed = 11;
  loader.prefetch_batches = exp.runtime.integer("prefetch_batches");
  asg::BatchSource batches(dataset, loader);
  asg::TrainLoopOptions loop_options = asg::TrainLoopOptions::from(exp.train);
  loop_options.checkpoint_every = 0;  // timed separately below

  asg::bench::Model same_step_model = asg::bench::build(catalog, dataset->info());
  asg::DiffusionTrainer same_step(same_step_model.text, same_step_model.backbone, schedule, options, settings.device, 7);
  HandData same_step_data(dataset, batch);
  asg::bench::HandWritten hand(asg::bench::build(catalog, dataset->info()), options, 7);
  HandData hand_data(dataset, batch);

  enum Side { kStaged, kSameStep, kPlain };
  double seconds[3] = {0, 0, 0};
  int64_t staged_steps = 0;
  for (int r = -1; r < rounds; ++r) {  // round -1 warms all up and is not counted
    for (int k = 0; k < 3; ++k) {
      const Side side = static_cast<Side>((k + r + 3) % 3);
      const auto start = std::chrono::steady_clock::now();
      if (side == kStaged) {
        loop_options.steps = staged_steps + per_round;
        asg::TrainLoop(trainer, batches, recorder, loop_options).run(staged_steps, {});
        staged_steps += per_round;
      } else if (side == kSameStep) {
        for (int s = 0; s < per_round; ++s) {
          auto [x0, captions] = same_step_data.next();
          same_step.step(x0, captions);
        }
        same_step.save_checkpoint((dir / "same_step.pt").string(), staged_steps, {});
      } else {
        for (int s = 0; s < per_round; ++s) {
          auto [x0, captions] = hand_data.next();
          hand.step(x0, captions);
        }
        hand.save((dir / "hand.pt").string());
      }
      if (r >= 0) seconds[side] += seconds_since(start);
    }
  }
  recorder.finish({});
  const double staged_s = seconds[kStaged];

  // One checkpoint at the quickstart's size, as TrainLoop writes it every checkpoint_every steps.
  std::vector<double> saves;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    trainer.save_checkpoint((dir / "checkpoint.pt").string(), staged_steps, {});
    saves.push_back(seconds_since(start));
  }
  const double save_s = asg::bench::median(saves);
  const double step_s = staged_s / (static_cast<double>(rounds) * per_round);
  const int64_t interval = asg::default_params("train", asg::core_sections()[0].params).integer("checkpoint_every");
  const double ratio = staged_s / seconds[kSameStep];
  const double steps_each = static_cast<double>(rounds) * per_round;

  fmt::print("run pipeline, unet3d + temporal_conv at their defaults on synthetic stickers (batch {}), {} threads, {} rounds x {} steps each side\n", batch,
             torch::get_num_threads(), rounds, per_round);
  fmt::print("  staged pipeline                       : {:8.2f} ms/step (BatchSource, TrainLoop, registry log, final checkpoint)\n",
             1000 * step_s);
  fmt::print("  hand loop around the same step        : {:8.2f} ms/step (serial data, DiffusionTrainer::step, final checkpoint)\n",
             1000 * seconds[kSameStep] / steps_each);
  fmt::print("  hand loop in plain LibTorch           : {:8.2f} ms/step (serial data, torch::optim::AdamW step, torch::save)\n",
             1000 * seconds[kPlain] / steps_each);
  fmt::print("  ratio staged / same-step hand loop    : {:8.4f}  (target <= 1.02)  {}\n", ratio, ratio <= 1.02 ? "OK" : "OVER TARGET");
  fmt::print("  ratio staged / plain LibTorch loop    : {:8.4f}\n", staged_s / seconds[kPlain]);
  fmt::print("  checkpoint save (median of 5): {:8.2f} ms, {:.1f} MiB\n", 1000 * save_s,
             fs::file_size(dir / "checkpoint.pt") / 1048576.0);
  fmt::print("  fraction of training time at checkpoint_every = {}: {:.4f}%\n", interval, 100 * save_s / (interval * step_s));
  fs::remove_all(dir);
  return check && ratio > 1.02 ? 1 : 0;
}
