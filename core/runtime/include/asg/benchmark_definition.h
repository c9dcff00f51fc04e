// Benchmark definitions: a benchmark is a named, versioned file that pins what every run on it measures.
//
//   experiments/benchmarks/<anything>.toml
//     [benchmark]  name, version, description, rank_by, seeds = [0, 1, 2]
//     [dataset]    plugin and the parameters that define the references (size, frames, fps, selection rule...)
//     [eval]       split (the prompts' source), num_samples, num_real, ...
//     [sampler]    plugin and its settings
//     [[metrics]]  each metric: plugin and the parameters that are its convention (extractor sha256, covariance...)
//     [assumptions] "<section>.<key>" = "why this value was chosen where the source does not say"
//     [reproduction] cuda_abs, cuda_rel: how far a CUDA rerun (asg reproduce) may land from the recorded value;
//                    [reproduction."<result key>"] the same for one metric. On the CPU in deterministic mode a
//                    rerun must give identical numbers, whatever the definition says.
//
// An experiment joins a benchmark by `[benchmark] name`. Loading it then pins the experiment to the definition:
// every key the definition sets is filled in where the experiment leaves it out, and an experiment that sets it
// to another value is refused, naming both places and both values (a generated set smaller than the benchmark
// demands is refused before anything runs). The experiment lists exactly the definition's metrics (or none, to
// take them all); it adds only what the definition leaves open, such as where the extractor file lies on this
// machine. The run's seed must be one of the definition's seeds. What the definition leaves out stays the
// experiment's choice and, where it is part of the protocol (e.g. [eval] task), still goes into the protocol
// hash, so such variants are ranked apart on the leaderboard.
//
// Where definitions are found: the directories in ASG_BENCHMARK_PATH (colon-separated), then the source tree's
// experiments/benchmarks/ folder. A benchmark name without a definition is an ad-hoc benchmark: the experiment alone
// decides its protocol, as before definitions existed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace asg {

struct BenchmarkDefinition {
  std::filesystem::path file;
  std::string name;
  std::string version;
  std::string description;
  std::string rank_by;
  std::vector<int64_t> seeds;                      // empty: any seed
  // [benchmark] tasks: the [eval] tasks it measures, each its own protocol (a text task and an image task, say);
  // empty: the task is [eval] task's if the definition sets it, else the experiment's.
  std::vector<std::string> tasks;
  std::map<std::string, std::string> assumptions;  // "eval.num_samples" -> why (a field its source does not state)
  // Every key the definition pins, in file order, as "dataset.size" / "metrics.fvd.frames" and its TOML text.
  struct Field {
    std::string key;
    std::string value;
  };
  std::vector<Field> fields;
  // [reproduction]: |rerun - recorded| <= abs + rel * |recorded| passes, for reruns on CUDA (or across devices).
  struct Tolerance {
    double abs = 0;
    double rel = 0;
  };
  std::optional<Tolerance> cuda_tolerance;            // for every metric without its own
  std::map<std::string, Tolerance> metric_tolerances;  // by result key
};

// ASG_BENCHMARK_PATH's directories, then the source tree's experiments/benchmarks/ (when it exists).
std::vector<std::filesystem::path> benchmark_search_path();

// Every definition on the search path, by name. asg::Error(Config) naming the file and line for a definition
// that cannot be read (bad TOML, unknown section, missing name or version, an assumption about a key the
// definition does not set) and for two files that define the same name.
std::vector<BenchmarkDefinition> discover_benchmarks(const std::vector<std::filesystem::path>& search_path);

// The definition named `name`, if any.
std::optional<BenchmarkDefinition> find_benchmark(const std::string& name,
                                                  const std::vector<std::filesystem::path>& search_path);

// The sections a definition may hold, for error messages and `asg benchmarks show`.
const std::vector<std::string>& benchmark_definition_sections();

}  // namespace asg
