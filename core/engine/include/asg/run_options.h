// Where and as what a run is recorded: the registry, the runs folder, the attempt it resumes, its parent and
// role, its thread count. Given to run_experiment (asg/runner.h) and the recorder stage. Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "asg/registry.h"

namespace asg {

// Continue an earlier attempt from one of its checkpoints (see resume_run).
struct ResumeFrom {
  std::string run_id;                // the attempt being continued
  int64_t attempt = 1;               // its attempt number; the new one is attempt + 1
  std::filesystem::path checkpoint;  // a training-state checkpoint it wrote
};

struct RunOptions {
  std::filesystem::path registry_path = "runs/registry.sqlite";
  std::filesystem::path runs_dir = "runs";
  std::optional<ResumeFrom> resume;
  // A fresh run's parent (a sweep that runs it as one of its points, or the run a reproduction reruns) and
  // its role. Resumed attempts take their parent from `resume`.
  std::optional<std::string> parent_run_id;
  RunRole role = RunRole::Run;
  // Intra-op threads when the config says [runtime] threads = 0: the count recorded by the run this one reruns,
  // continues or re-evaluates (a CPU run's sums are split across its threads, so another count changes the last
  // bits, and training amplifies them). Unset: ASG_THREADS, else every core.
  std::optional<int64_t> threads;
};

}  // namespace asg
