// Running an experiment end to end: build the plugins, record the run, train, sample, evaluate.
// No torch in this header: the CLI and tests include it cheaply.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "asg/experiment.h"
#include "asg/registry.h"

namespace asg {

struct RunOptions {
  std::filesystem::path registry_path = "runs/registry.sqlite";
  std::filesystem::path runs_dir = "runs";
};

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

// Facts about this machine for the run record (JSON): CPU model, cores, threads, torch version, device.
std::string host_info_json(const std::string& device, int64_t threads);

struct GitState {
  std::string commit;  // "" outside a git checkout
  bool dirty = false;
};
GitState git_state(const std::filesystem::path& dir);

}  // namespace asg
