// Benchmark: during the quickstart's training, the share of time the training thread waits for batches
// (TrainLoop records it as train/data_wait_fraction). Target (issue 7): < 5% with the default loader.
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

#include "asg/data_tools.h"
#include "asg/experiment.h"
#include "asg/plugin_catalog.h"
#include "asg/registry.h"
#include "asg/runner.h"
#include "bench_args.h"

namespace fs = std::filesystem;

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
      const auto points = registry.metric_history(outcome.run_id, "train/data_wait_fraction");
      return points.empty() ? -1.0 : points.back().value;
    };
    const double synthetic = measure(quickstart, 2), synthetic_inline = measure(quickstart, 0);
    const double webp = measure(dir / "files.toml", 2), webp_inline = measure(dir / "files.toml", 0);
    fmt::print("data wait during quickstart training ({} steps, batch 16, {} threads): share of training time spent waiting "
               "for the next batch\n",
               args["steps"], args["threads"]);
    fmt::print("  {:<44} {:>10} {:>16}\n", "data", "prefetch 2", "inline (baseline)");
    fmt::print("  {:<44} {:>9.2f}% {:>15.2f}%\n", "synthetic_stickers (in memory)", 100 * synthetic, 100 * synthetic_inline);
    fmt::print("  {:<44} {:>9.2f}% {:>15.2f}%\n", "sticker_files (WebP files, decoded per sample)", 100 * webp, 100 * webp_inline);
    fmt::print("  target: < 5% with the default loader (prefetch 2)\n");
  } catch (const std::exception& e) {
    fmt::print(stderr, "asg_bench_data_wait: {}\n", e.what());
    fs::remove_all(dir);
    return 1;
  }
  fs::remove_all(dir);
  return 0;
}
