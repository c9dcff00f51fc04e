// Running an experiment end to end: build the plugins, record the run, train, sample, evaluate.
// No torch in this header: the CLI and tests include it cheaply.
//
// run_experiment is a composition of stages, each with one job and one header under asg/stages/:
//
//   apply_runtime_settings   global torch state (device, threads, determinism, allocator), in one place
//   build_experiment         plugin objects (asg/build.h)
//   RunRecorder              registry rows, run folder, log, metric points, heartbeat, artifacts, the end
//   BatchSource              the training data order and its position; batches prefetched on a worker
//   TrainLoop                steps: batch -> DiffusionTrainer::step (forward/backward -> gradient hook ->
//                            optimizer -> EMA) -> loss records -> checkpoints (every N steps, on SIGINT/SIGTERM)
//   Evaluator                sampling and metrics; hands every clip to a SampleWriter
//   SampleWriter             sample GIFs, the grid and captions.txt, each recorded as an artifact
//
// A distributed run replaces pieces, not the composition: a BatchSource per rank over its shard, an
// all-reduce as the trainer's gradient hook (asg/trainer.h), the recorder only on rank 0.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "asg/experiment.h"
#include "asg/plugin_load_policy.h"
#include "asg/registry.h"
#include "asg/run_options.h"

namespace asg {

// Where a recorded run executed, as far as its numbers depend on it (from its environment JSON).
struct RecordedExecution {
  std::string device;  // "cpu", "cuda:0", or "" when not recorded
  bool deterministic = false;
  std::optional<int64_t> threads;  // intra-op threads, when recorded
};
RecordedExecution recorded_execution(const std::string& host_json);

// The loading policy for a config run `run_id` stored (resume, eval, reproduce): the process default, with only the
// libraries the run recorded allowed from the config's [runtime] plugin_path (asg/plugin_load_policy.h).
PluginLoadPolicy stored_config_policy(const Registry& registry, const std::string& run_id);

struct RunOutcome {
  std::string run_id;
  std::filesystem::path run_dir;
  std::vector<ResultValue> results;
};

// Builds every plugin object first, so a plugin that refuses its parameters or the dataset
// (asg::Error(Config)) leaves nothing in the registry. Then records the run and executes it. On an
// exception the run is marked FAILED (KILLED for an interrupt) with the message, and the exception
// is rethrown.
RunOutcome run_experiment(const Experiment& experiment, const RunOptions& options);

// What `asg validate --build` does: builds every plugin object as a run would (so combinations that
// cannot work are refused with the same messages) and runs the backbone once, at batch 1 on the CPU, on
// a random clip of the dataset's shape. Records nothing. Returns a one-line summary (parameters, output
// shape, time); asg::Error(Config) on a refusal.
std::string check_build(const Experiment& experiment);

// Continues a KILLED or FAILED run (or a RUNNING one whose process is gone, which it first marks KILLED)
// from its run folder's final.pt (training was done) or else its latest step checkpoint (written every
// [train] checkpoint_every steps, and when SIGINT/SIGTERM stops training), as a new run: parent_run_id =
// the old run, attempt + 1. The experiment is the old run's resolved config.toml (its config hash must
// match the record), run with the thread count the old run recorded. The new run starts with the old one's training history up to the checkpoint, so the
// history has every step once. On the same build and device, its weights and metrics are bit for bit
// those of an uninterrupted run. asg::Error(Config) when there is nothing to resume, naming the run and
// what is missing.
RunOutcome resume_run(const std::string& run_id, const RunOptions& options);

struct EvalOutcome {
  std::string run_id;
  int64_t result_set = 0;
  std::filesystem::path output_dir;  // <run folder>/evals/<result set>
  std::string protocol_hash;
  std::vector<ResultValue> results;
};

// `asg eval RUN --benchmark NAME`: evaluates a FINISHED run's trained model (the EMA weights of its final.pt;
// for a run that trained 0 steps, the weights it evaluated) under the benchmark's definition, without
// retraining, and adds the result set to the run under the protocol's hash. The experiment is the run's
// config.toml (its config hash must match the record) with its sampler, metrics and the [eval] keys the
// definition pins replaced by the definition's (load_experiment_under_benchmark), run with the thread count the
// run recorded; the model must be the same (method hash), so a definition that pins the data differently from what the run trained on is refused.
// `overrides` apply as in asg run, e.g. an extractor's path (metrics.0.model=...) or [eval] batch_size.
// asg::Error(Config) before anything is recorded when the run, its folder, its checkpoint or the definition
// is missing or does not fit; once the set is recorded, a failure marks it FAILED and is rethrown.
EvalOutcome evaluate_run(const std::string& run_id, const std::string& benchmark, const std::vector<std::string>& overrides,
                         const RunOptions& options);


}  // namespace asg
