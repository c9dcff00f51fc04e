// Sweeps: one experiment run over a set of points, resumable.
//
//   name = "temporal-ablation"
//   experiment = "../ablations/temporal/base.toml"  # relative to the sweep file; or a list of files: an axis
//                                                    # over experiments (the outermost), for arms that differ in
//                                                    # more than one key
//   seeds = [0, 1, 2]                                # optional: every point once per seed (runtime.seed)
//   [set]                                            # optional: overrides every point shares
//   "train.steps" = 200
//   [grid]                                           # optional: the cartesian product of these lists
//   "temporal.plugin" = ["temporal_conv", "temporal_attention", "sti"]
//   [zip]                                            # optional: lists of one length, taken together
//   "train.lr" = [1e-3, 5e-4]
//   "train.warmup_steps" = [50, 100]
//
// Points: experiments × grid (first key slowest) × zip × seeds. Every point is loaded as `asg run EXPERIMENT --set ...` would
// load it before anything runs, so an unknown key or an invalid value is refused naming the sweep file, the
// line of the axis and the point, with the experiment loader's message.
//
// A point is known by its config hash. Running a sweep skips points with a FINISHED run of that hash (whoever ran
// it), runs the others, and retries those whose runs FAILED or were KILLED; so rerunning an interrupted sweep
// finishes only what is missing. The sweep is a run itself (role sweep) and each point's run has it as parent.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "asg/runner.h"

namespace asg {

struct SweepPoint {
  size_t index = 0;                    // 0-based, in plan order
  std::filesystem::path experiment;    // the experiment file this point overrides
  std::vector<std::string> overrides;  // "key=TOML value", [set] first, then the axes
  std::string label;                   // the axes' values: "temporal.plugin=sti runtime.seed=1"
  std::string config_hash;
};

struct SweepPlan {
  std::filesystem::path file;
  std::string name;
  std::vector<std::filesystem::path> experiments;  // one, or the experiment axis in file order
  std::string text;  // the sweep file, recorded with the sweep run
  std::string hash;  // of the experiment's config hash and every point's: the sweep's identity
  std::vector<SweepPoint> points;
};

// Reads and validates a sweep file (asg::Error(Config) with file:line).
SweepPlan plan_sweep(const std::filesystem::path& file);

enum class PointState { Pending, Running, Finished, Failed, Killed };
const char* point_state_name(PointState state);

struct PointStatus {
  PointState state = PointState::Pending;
  std::string run_id;  // the newest run of the point's config hash, if any
};

// Each point's state from the registry (a missing registry: all pending).
std::vector<PointStatus> sweep_point_status(const SweepPlan& plan, const std::filesystem::path& registry_path);

struct SweepOptions {
  RunOptions run;                  // registry and runs folder
  int jobs = 1;                    // points run at once, each with its share of the cores (ASG_THREADS)
  bool fail_fast = false;          // stop starting points after the first failure
  std::filesystem::path executable;  // the asg binary that runs each point (`asg run`), as a child process
};

struct SweepSummary {
  std::string sweep_run_id;
  size_t skipped = 0;  // FINISHED before this invocation
  size_t finished = 0, failed = 0, not_started = 0;
  size_t stopped = 0;  // running when the interrupt came, and ended by it (KILLED, or before their run was recorded)
  bool interrupted = false;
};

// Runs the sweep: records the sweep run, starts each missing point as `asg run` (output in
// <runs>/sweeps/<sweep run>/point-NNN.log), keeps going past failures unless fail_fast, and ends the sweep run
// FINISHED (every point finished), FAILED or KILLED (SIGINT/SIGTERM, passed on to the running points).
SweepSummary run_sweep(const SweepPlan& plan, const SweepOptions& options);

// `asg sweep status`: one line per point and a count per state.
std::string render_sweep_status(const SweepPlan& plan, const std::vector<PointStatus>& status);

}  // namespace asg
