// The runtime-settings stage: [runtime] applied to the process (threads, determinism, allocator, device), and
// the run's environment as recorded JSON.
// Host-only (plugins never include it); run_experiment (asg/runner.h) composes the stages.
#pragma once

#include <torch/torch.h>
#include <cstdint>
#include <optional>
#include <string>

#include "asg/experiment.h"

namespace asg {

struct RuntimeSettings {
  torch::Device device = torch::kCPU;
  int64_t threads = 1;
  bool deterministic = true;
  std::string allocator;  // what keep_freed_memory_for_reuse() did
};

// Applies [runtime] to the process: intra-op threads, deterministic algorithms (and cuBLAS workspace),
// the allocator policy; resolves the device. The only place a run changes global torch state.
// Threads: [runtime] threads, or when that is 0 `threads_when_unset` (RunOptions::threads), else ASG_THREADS,
// else every core. asg::Error(Config) when the device is not available.
RuntimeSettings apply_runtime_settings(const Experiment& experiment, std::optional<int64_t> threads_when_unset = std::nullopt);

// The run's environment as JSON: host, CPU, cores, the settings above, Torch and ASG Lab versions.
// Recorded with the run (registry host_json), never part of its method or protocol hash.
std::string environment_json(const RuntimeSettings& settings);

}  // namespace asg
