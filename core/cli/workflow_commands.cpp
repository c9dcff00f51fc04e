#include "workflow_commands.h"

#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "asg/error.h"
#include "asg/interrupt.h"
#include "asg/reproduce.h"
#include "asg/sweep.h"

namespace fs = std::filesystem;

namespace asg::cli {

namespace {

RunOptions options_of(const std::string& registry_path, const std::string& runs_dir) {
  RunOptions o;
  o.registry_path = registry_path;
  o.runs_dir = runs_dir;
  return o;
}

int cmd_reproduce(const std::string& registry_path, const std::string& runs_dir, const std::string& id, bool allow_drift) {
  install_interrupt_handlers();
  ReproduceOptions options;
  options.run = options_of(registry_path, runs_dir);
  options.allow_plugin_drift = allow_drift;
  const ReproduceOutcome outcome = reproduce_run(id, options);
  fmt::print("\n{}", render_verdict(outcome));
  return outcome.agrees ? 0 : 3;
}

int cmd_sweep(const std::string& registry_path, const std::string& runs_dir, const std::vector<std::string>& args, int jobs, bool fail_fast) {
  if (args.size() == 2 && args[0] == "status") {
    const SweepPlan plan = plan_sweep(args[1]);
    fmt::print("{}", render_sweep_status(plan, sweep_point_status(plan, registry_path)));
    return 0;
  }
  if (args.size() != 1) throw config_error("usage: asg sweep FILE [--jobs N] [--fail-fast] | asg sweep status FILE");
  install_interrupt_handlers();
  const SweepPlan plan = plan_sweep(args[0]);
  SweepOptions options;
  options.run = options_of(registry_path, runs_dir);
  options.jobs = jobs;
  options.fail_fast = fail_fast;
  options.executable = fs::read_symlink("/proc/self/exe");
  const SweepSummary summary = run_sweep(plan, options);
  fmt::print("\n{}", render_sweep_status(plan, sweep_point_status(plan, registry_path)));
  fmt::print("sweep run {}: {} finished now, {} already finished, {} failed, {} stopped, {} not run{}\n", summary.sweep_run_id,
             summary.finished, summary.skipped, summary.failed, summary.stopped, summary.not_started,
             summary.interrupted ? " (interrupted: rerun the sweep to finish it)" : "");
  if (summary.interrupted) return 130;
  return summary.failed == 0 && summary.not_started == 0 ? 0 : 1;
}

}  // namespace

void add_workflow_commands(CLI::App& app, Action& action, std::string& registry_path, std::string& runs_dir) {
  {
    auto* cmd = app.add_subcommand("reproduce", "rerun a FINISHED run from its stored config and judge each metric against the "
                                                "recorded one (exit 3 when any is outside tolerance)");
    auto id = std::make_shared<std::string>();
    auto allow = std::make_shared<bool>(false);
    cmd->add_option("run", *id, "run id (any unambiguous start of one)")->required();
    cmd->add_flag("--allow-plugin-drift", *allow, "rerun even when plugin versions, library hashes or the config hash differ");
    cmd->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str();
    cmd->add_option("--runs-dir", runs_dir, "directory for run outputs")->capture_default_str();
    cmd->callback([&, id, allow] { action = [&, id, allow] { return cmd_reproduce(registry_path, runs_dir, *id, *allow); }; });
  }
  {
    auto* cmd = app.add_subcommand("sweep", "run every point of a sweep file (grid, zip, seeds), skipping FINISHED ones; "
                                            "'asg sweep status FILE' shows progress");
    auto args = std::make_shared<std::vector<std::string>>();
    auto jobs = std::make_shared<int>(1);
    auto fail_fast = std::make_shared<bool>(false);
    cmd->add_option("args", *args, "FILE, or: status FILE")->required()->expected(1, 2);
    cmd->add_option("--jobs", *jobs, "points run at once; each gets its share of the cores")->check(CLI::Range(1, 1024))->capture_default_str();
    cmd->add_flag("--fail-fast", *fail_fast, "start no more points after the first failure");
    cmd->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str();
    cmd->add_option("--runs-dir", runs_dir, "directory for run outputs")->capture_default_str();
    cmd->callback([&, args, jobs, fail_fast] {
      action = [&, args, jobs, fail_fast] { return cmd_sweep(registry_path, runs_dir, *args, *jobs, *fail_fast); };
    });
  }
}

}  // namespace asg::cli
