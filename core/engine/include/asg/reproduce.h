// `asg reproduce RUN`: rerun a recorded run from its stored resolved config and judge whether its numbers agree.
//
// The rerun is a new run (role reproduction, parent = the original), so it never joins the leaderboard beside the
// run it checks. Before anything runs, the plugins this machine would load are compared with the ones the run
// recorded (name, version, library sha256, slot by slot) and the stored config must hash as recorded; a
// difference is refused, naming each one, unless allow_plugin_drift.
//
// A CPU run is rerun with the intra-op thread count it recorded (its sums are split across threads, so another
// count changes the last bits, and training amplifies them), whatever the stored config's [runtime] threads says.
//
// Verdict per recorded metric: on the CPU with deterministic = true on both sides, the rerun must give the
// identical value. Otherwise (a CUDA run on either side) the benchmark definition's [reproduction] tolerance
// applies (|rerun - recorded| <= abs + rel * |recorded|); without one declared, identical is still demanded and
// the verdict says that no tolerance was declared.
#pragma once

#include <string>
#include <vector>

#include "asg/benchmark_definition.h"
#include "asg/registry.h"
#include "asg/runner.h"

namespace asg {

struct ReproduceOptions {
  RunOptions run;  // registry, runs folder
  bool allow_plugin_drift = false;
};

struct MetricVerdict {
  std::string key;
  double recorded = 0;
  double rerun = 0;
  double abs_tolerance = 0;
  double rel_tolerance = 0;
  bool pass = false;
};

struct ReproduceOutcome {
  RunRecord original;
  std::string rerun_id;
  std::vector<std::string> drift;  // plugin and config differences that were allowed
  std::string tolerance_rule;       // which rule judged: "identical (CPU, deterministic)", the definition's, ...
  std::vector<MetricVerdict> verdicts;
  bool agrees = false;  // every recorded metric passed, and the rerun recorded every one of them
};

// asg::Error(Config) before anything is recorded when the run is not a FINISHED experiment run, or when plugins or
// the config drifted and drift is not allowed (the message lists each difference). A failure of the rerun itself
// marks it FAILED and is rethrown.
ReproduceOutcome reproduce_run(const std::string& id_or_prefix, const ReproduceOptions& options);

// The run's LibTorch against the one this build links, as a drift line ("" when the same, or not recorded):
// another LibTorch runs other kernels, so a CPU rerun's last bits (and, after training, its numbers) differ.
std::string libtorch_drift(const std::string& host_json, const std::string& linked_version);

// One verdict per recorded metric: identical values demanded when `exact` (CPU and deterministic on both sides) or
// when the definition (may be null) declares no tolerance; else |rerun - recorded| <= abs + rel·|recorded| with the
// metric's own tolerance, or the definition's cuda_* one. A metric the rerun lacks fails; NaN agrees only with NaN.
std::vector<MetricVerdict> judge_reproduction(const std::vector<ResultValue>& recorded, const std::vector<ResultValue>& rerun, bool exact,
                                              const BenchmarkDefinition* definition);

// The verdict as a Markdown table with a closing line (REPRODUCED / NOT REPRODUCED).
std::string render_verdict(const ReproduceOutcome& outcome);

}  // namespace asg
