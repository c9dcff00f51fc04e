// Benchmark: during the quickstart's training, the share of time the training thread waits for batches
// (TrainLoop records it as train/data_wait_fraction). Target (issue 7): < 5% with the default loader.
// Also the training loop's time per step with the loader's threads against inline (ratio near 1.0): decode
// threads that start OpenMP teams of their own slow every step of training (1.5x on 2 cores, LibTorch 2.14),
// which a wait fraction does not show.
//
// Two data paths: the in-memory synthetic stickers, and the same stickers written as WebP files by
// `asg data synth` and read through sticker_files (decode + frame selection on the loader's threads).
// Baseline, in the same run: the same training with the loader inline ([runtime] prefetch_batches = 0),
// where every sample is produced on the training thread. Runs are real `asg run`s (run_experiment) into a
// temporary registry.
//
//   asg_bench_data_wait [--steps N] [--threads N]
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <tuple>

#include "asg/data/tools.h"
#include "asg/data_synth.h"
#include "asg/error.h"
#include "asg/experiment.h"
#include "asg/plugin_catalog.h"
#include "asg/registry.h"
#include "asg/runner.h"
#include "bench_args.h"

namespace fs = std::filesystem;

namespace {
struct Measured {
  double wait;         // train/data_wait_fraction
  double ms_per_step;  // the training loop's time per step
};
}  // namespace

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"steps", 200, 1}, {"threads", 2, 1}});
  if (!args.parse(argc, argv)) return 2;
  const fs::path dir = fs::temp_directory_path() / fmt::format("asg_bench_data_wait_{}", getpid());
  fs::create_directories(dir);
  const fs::path quickstart = fs::path(ASG_SOURCE_DIR) / "experiments" / "quickstart.toml";
  const std::vector<std::string> common = {fmt::format("train.steps={}", args["steps"]), "eval.num_samples=2", "eval.save_gifs=0",
                                           "sampler.steps=2", fmt::format("runtime.threads={}", args["threads"]),
                                           "train.checkpoint_every=0",
                                           // a shortened run is off the quickstart's benchmark (which pins 64 samples)
                                           "benchmark.name=\"\""};
  const std::string synthetic_size = "dataset.train_size=2000";  // a synthetic_stickers key
  try {
    asg::PluginCatalog catalog;
    // The quickstart's stickers as files (2000 train samples: several epochs' worth of distinct files).
    std::vector<std::string> synth_overrides = common;
    synth_overrides.push_back(synthetic_size);
    const asg::Experiment source = asg::load_experiment(quickstart, synth_overrides, catalog);
    const asg::SynthSummary files = asg::synth_dataset(source, dir / "files", asg::MediaFormat::WebP);
    std::ofstream(dir / "files.toml") << fmt::format("base = [\"{}\"]\n{}", quickstart.string(), files.dataset_toml);

    asg::RunOptions options;
    options.registry_path = dir / "registry.sqlite";
    options.runs_dir = dir / "runs";
    auto measure = [&](const fs::path& file, int prefetch) {
      std::vector<std::string> overrides = common;
      overrides.push_back(fmt::format("runtime.prefetch_batches={}", prefetch));
      if (file == quickstart) overrides.push_back(synthetic_size);
      const asg::Experiment exp = asg::load_experiment(file, overrides, catalog);
      const auto outcome = asg::run_experiment(exp, options);
      asg::Registry registry(options.registry_path);
      auto last = [&](const std::string& key) {
        const auto points = registry.metric_history(outcome.run_id, key);
        if (points.empty()) throw asg::internal_error(fmt::format("run {} recorded no {}", outcome.run_id, key));
        return points.back().value;
      };
      // The loop's rate is recorded as FLOP/s over the whole loop; with the step's FLOPs it is seconds per step.
      return Measured{last("train/data_wait_fraction"), 1000 * last("train/flops_per_step") / last("train/flops_per_second")};
    };
    const Measured synthetic = measure(quickstart, 2), synthetic_inline = measure(quickstart, 0);
    const Measured webp = measure(dir / "files.toml", 2), webp_inline = measure(dir / "files.toml", 0);
    fmt::print("data wait during quickstart training ({} steps, batch 16, {} threads): share of training time spent waiting "
               "for the next batch\n",
               args["steps"], args["threads"]);
    fmt::print("  {:<44} {:>10} {:>16}\n", "data", "prefetch 2", "inline (baseline)");
    fmt::print("  {:<44} {:>9.2f}% {:>15.2f}%\n", "synthetic_stickers (in memory)", 100 * synthetic.wait, 100 * synthetic_inline.wait);
    fmt::print("  {:<44} {:>9.2f}% {:>15.2f}%\n", "sticker_files (WebP files, decoded per sample)", 100 * webp.wait,
               100 * webp_inline.wait);
    fmt::print("  target: < 5% with the default loader (prefetch 2)\n");
    fmt::print("training loop time per step (checkpoints off; the first step's FLOP counting included)\n");
    fmt::print("  {:<44} {:>10} {:>16} {:>8}\n", "data", "prefetch 2", "inline (baseline)", "ratio");
    for (const auto& [name, threaded, inline_] : {std::tuple{"synthetic_stickers (in memory)", synthetic, synthetic_inline},
                                                  std::tuple{"sticker_files (WebP files, decoded per sample)", webp, webp_inline}})
      fmt::print("  {:<44} {:>7.1f} ms {:>13.1f} ms {:>8.3f}\n", name, threaded.ms_per_step, inline_.ms_per_step,
                 threaded.ms_per_step / inline_.ms_per_step);
    fmt::print("  expected: ratio near 1.0 (the loader's threads must not slow the training threads)\n");
  } catch (const std::exception& e) {
    fmt::print(stderr, "asg_bench_data_wait: {}\n", e.what());
    fs::remove_all(dir);
    return 1;
  }
  fs::remove_all(dir);
  return 0;
}
