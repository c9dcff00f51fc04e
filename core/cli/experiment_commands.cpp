// asg run, resume, eval, validate and benchmarks.
#include "experiment_commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "asg/benchmark_definition.h"
#include "asg/error.h"
#include "asg/experiment.h"
#include "asg/interrupt.h"
#include "asg/leaderboard.h"
#include "asg/plugin_catalog.h"
#include "asg/registry.h"
#include "asg/runner.h"
#include "asg/names.h"

namespace asg::cli {

namespace fs = std::filesystem;

namespace {

asg::RunOptions run_options(const std::string& registry_path, const std::string& runs_dir) {
  asg::RunOptions options;
  options.registry_path = registry_path;
  options.runs_dir = runs_dir;
  return options;
}

int cmd_benchmarks(const std::string& show) {
  const auto search_path = asg::benchmark_search_path();
  const auto definitions = asg::discover_benchmarks(search_path);
  std::vector<std::string> searched;
  for (const auto& p : search_path) searched.push_back(p.string());
  if (show.empty()) {
    fmt::print("{:<30} {:<8} {:<20} {}\n", "NAME", "VERSION", "RANK BY", "FILE");
    for (const auto& d : definitions) fmt::print("{:<30} {:<8} {:<20} {}\n", d.name, d.version, d.rank_by, d.file.string());
    fmt::print("\nsearched: {}\n", searched.empty() ? std::string("(nothing: set ASG_BENCHMARK_PATH)") : asg::join(searched, ":"));
    return 0;
  }
  for (const auto& d : definitions) {
    if (d.name != show) continue;
    std::vector<std::string> seeds;
    for (int64_t s : d.seeds) seeds.push_back(std::to_string(s));
    fmt::print("benchmark {} version {}\n  {}\n  file: {}\n  rank by: {}\n  seeds: {}\n", d.name, d.version, d.description,
               d.file.string(), d.rank_by.empty() ? "(the first metric)" : d.rank_by, seeds.empty() ? "any" : asg::join(seeds, ", "));
    if (!d.tasks.empty()) fmt::print("  tasks: {} (each its own protocol)\n", asg::join(d.tasks, ", "));
    fmt::print("\n");
    fmt::print("| key | value | source |\n|---|---|---|\n");
    for (const auto& f : d.fields) {
      auto why = d.assumptions.find(f.key);
      fmt::print("| {} | {} | {} |\n", f.key, f.value, why == d.assumptions.end() ? "" : "assumption: " + why->second);
    }
    for (const auto& [key, why] : d.assumptions)
      if (key.rfind("benchmark.", 0) == 0) fmt::print("| {} | | assumption: {} |\n", key, why);
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& d : definitions) names.push_back(d.name);
  throw asg::config_error(fmt::format("no benchmark definition named '{}' (known: {}; searched {}).{}", show,
                                      names.empty() ? "none" : asg::join(names, ", "),
                                      searched.empty() ? "nothing" : asg::join(searched, ":"), asg::did_you_mean(show, names)));
}

// "# benchmark NAME version V: held to its definition FILE", or says that the benchmark is ad hoc.
std::string benchmark_line(const asg::Experiment& exp) {
  const std::string& name = exp.benchmark.str("name");
  if (name.empty()) return "# on no benchmark\n";
  if (!exp.benchmark_definition)
    return fmt::format("# benchmark {}: ad hoc (no definition of that name; asg benchmarks lists them)\n", name);
  return fmt::format("# benchmark {} version {}: held to its definition {}\n", name, exp.benchmark_definition->version,
                     exp.benchmark_definition->file.string());
}

int cmd_validate(const std::vector<std::string>& files, const std::vector<std::string>& overrides, bool build) {
  int failures = 0;
  for (const auto& f : files) {
    try {
      asg::PluginCatalog catalog;
      asg::Experiment exp = asg::load_experiment(f, overrides, catalog);
      const std::string built = build ? "# " + asg::check_build(exp) + "\n" : "";
      fmt::print("# {}: valid; config hash {}\n# method {} protocol {}\n{}{}{}\n", f, exp.config_hash, exp.method_hash,
                 exp.protocol_hash, benchmark_line(exp), built, exp.resolved_toml);
    } catch (const asg::Error& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 2;
}

int cmd_run(const std::string& file, const std::vector<std::string>& overrides, bool dry_run,
            const asg::RunOptions& options) {
  asg::PluginCatalog catalog;
  asg::Experiment exp = asg::load_experiment(file, overrides, catalog);
  if (dry_run) {
    fmt::print("# {}: dry run; config hash {}\n# method {} protocol {}\n{}{}\n", file, exp.config_hash, exp.method_hash,
               exp.protocol_hash, benchmark_line(exp), exp.resolved_toml);
    return 0;
  }
  asg::install_interrupt_handlers();
  asg::RunOutcome outcome = asg::run_experiment(exp, options);
  (void)outcome;
  return 0;
}

int cmd_eval(const std::string& run_id, const std::string& benchmark, const std::vector<std::string>& overrides,
             const asg::RunOptions& options) {
  asg::install_interrupt_handlers();
  const asg::EvalOutcome outcome = asg::evaluate_run(run_id, benchmark, overrides, options);
  fmt::print("\n{}", asg::render_leaderboard(asg::Registry(options.registry_path), benchmark, asg::LeaderboardFormat::Markdown));
  (void)outcome;
  return 0;
}

}  // namespace

void add_experiment_commands(CLI::App& app, Action& action, std::string& registry_path, std::string& runs_dir) {
  auto overrides = std::make_shared<std::vector<std::string>>();
  {
    auto* cmd = app.add_subcommand("run", "train, sample, evaluate and record one experiment");
    auto file = std::make_shared<std::string>();
    auto dry_run = std::make_shared<bool>(false);
    auto parent_run = std::make_shared<std::string>();
    cmd->add_option("file", *file, "experiment TOML file")->required()->check(CLI::ExistingFile);
    cmd->add_option("--set", *overrides, "override a key: section.key=value (TOML value)")->allow_extra_args(false);
    cmd->add_flag("--dry-run", *dry_run, "validate and print the resolved config; run nothing");
    cmd->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str();
    cmd->add_option("--runs-dir", runs_dir, "directory for run outputs")->capture_default_str();
    // Set by asg sweep for each point it starts; hidden from --help (the group "" hides it).
    cmd->add_option("--parent-run", *parent_run, "the sweep run this run is a point of")->group("");
    cmd->callback([&, file, dry_run, parent_run, overrides] {
      action = [&, file, dry_run, parent_run, overrides] {
        asg::RunOptions options = run_options(registry_path, runs_dir);
        if (!parent_run->empty()) {
          const asg::RunRecord parent = asg::Registry(registry_path).resolve_run(*parent_run);
          if (parent.role != asg::RunRole::Sweep)
            throw asg::config_error(fmt::format("--parent-run {}: run {} is not a sweep (asg sweep sets this flag)", *parent_run, parent.id));
          options.parent_run_id = parent.id;
        }
        return cmd_run(*file, *overrides, *dry_run, options);
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("resume", "continue a KILLED or FAILED run from its latest checkpoint, as a new attempt");
    auto id = std::make_shared<std::string>();
    cmd->add_option("run", *id, "run id (asg runs lists them)")->required();
    cmd->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str();
    cmd->add_option("--runs-dir", runs_dir, "directory the run's folder is in")->capture_default_str();
    cmd->callback([&, id] {
      action = [&, id] {
        asg::install_interrupt_handlers();
        (void)asg::resume_run(*id, run_options(registry_path, runs_dir));
        return 0;
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("eval", "evaluate a FINISHED run's model under a benchmark's definition, without retraining; "
                                           "adds a result set to the run");
    auto id = std::make_shared<std::string>();
    auto benchmark = std::make_shared<std::string>();
    cmd->add_option("run", *id, "run id (asg runs lists them)")->required();
    cmd->add_option("--benchmark", *benchmark, "benchmark definition (asg benchmarks lists them)")->required();
    cmd->add_option("--set", *overrides, "override a key: section.key=value, e.g. metrics.0.model=/path/i3d.pt")->allow_extra_args(false);
    cmd->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str();
    cmd->add_option("--runs-dir", runs_dir, "directory the run's folder is in")->capture_default_str();
    cmd->callback([&, id, benchmark, overrides] {
      action = [&, id, benchmark, overrides] { return cmd_eval(*id, *benchmark, *overrides, run_options(registry_path, runs_dir)); };
    });
  }
  {
    auto* cmd = app.add_subcommand("validate", "check experiment files and print their resolved config");
    auto files = std::make_shared<std::vector<std::string>>();
    auto build = std::make_shared<bool>(false);
    cmd->add_option("files", *files, "experiment TOML files")->required()->check(CLI::ExistingFile);
    cmd->add_option("--set", *overrides, "override a key: section.key=value")->allow_extra_args(false);
    cmd->add_flag("--build", *build,
                  "also build every plugin as a run would (refusing combinations that cannot work) and run the backbone once "
                  "at batch 1 on the CPU; records nothing");
    cmd->callback([&, files, build, overrides] { action = [files, build, overrides] { return cmd_validate(*files, *overrides, *build); }; });
  }
  {
    auto* cmd = app.add_subcommand("benchmarks", "list benchmark definitions, or show what one pins (assumptions marked)");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "'list' (default) or 'show NAME'");
    cmd->callback([&, args] {
      action = [args] {
        if (args->empty() || (args->size() == 1 && (*args)[0] == "list")) return cmd_benchmarks("");
        if (args->size() == 2 && (*args)[0] == "show") return cmd_benchmarks((*args)[1]);
        throw asg::config_error("usage: asg benchmarks [list] | asg benchmarks show NAME");
      };
    });
  }
}

}  // namespace asg::cli
