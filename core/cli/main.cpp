// asg: the ASG Lab command line.
//
//   asg [--allow-plugin-path] COMMAND ...     (--allow-plugin-path: open the libraries an experiment's
//                                              [runtime] plugin_path names; docs/plugins.md)
//   asg run FILE [--set k=v]... [--dry-run] [--registry PATH] [--runs-dir DIR]
//   asg validate FILE... [--set k=v]... [--build]
//   asg plugins [list] | asg plugins show NAME | asg plugins test NAME [--plugin-path P]
//   asg new plugin --kind KIND NAME [--dir D]
//   asg benchmarks [list] | asg benchmarks show NAME
//   asg leaderboard [--benchmark NAME] [--format md|csv|json|latex] [--runs | --group-by KEY] [--where K=V]...
//   asg summary --benchmark NAME [--names a,b,...] [--format md|csv]
//   asg compare RUN RUN... [--format md|json]
//   asg runs [list] [--benchmark NAME] [--status S] [--where K=V]... [--deleted] [--limit N]
//   asg runs show RUN [--json] | asg runs rm RUN... [--purge] | asg runs gc [--stale-after-min N]
//   asg runs export [RUN...] [--all | --benchmark/--status/--where] --out FILE | asg runs import FILE
//   asg reproduce RUN [--allow-plugin-drift]
//   asg sweep FILE [--jobs N] [--fail-fast] | asg sweep status FILE
//   (every registry command takes --registry PATH; RUN is a run id or any unambiguous start of one)
//   asg resume RUN_ID [--registry PATH] [--runs-dir DIR]
//   asg eval RUN_ID --benchmark NAME [--set k=v]... [--registry PATH] [--runs-dir DIR]
//   asg data inspect FILE... [--json] [--max-canvas-pixels N] [--max-frames N] [--max-decoded-bytes N]
//   asg data export-frames FILE DIR
//   asg data synth EXPERIMENT OUT_DIR [--set k=v]... [--format webp|gif]
//   asg data index|stats|check SOURCE [manifest options] ...
//   asg data pack SOURCE OUT_DIR [--samples-per-shard N] [manifest options]
//
// Exit codes: 0 ok; 1 a run, the registry or a media file failed (or a sweep point did); 2 bad input (flags,
// config, plugins); 3 asg reproduce: the rerun's numbers are outside the benchmark's tolerance; 130 interrupted.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <exception>
#include <string>

#include "asg/error.h"
#include "asg/plugin.h"
#include "asg/plugin_load_policy.h"
#include "asg/version.h"
#include "data_commands.h"
#include "experiment_commands.h"
#include "plugin_commands.h"
#include "registry_commands.h"
#include "weights_commands.h"
#include "workflow_commands.h"

// Each command group adds its subcommands and, when CLI11 chooses one, sets the action main() runs inside the
// error handling that turns asg::Error into its exit code.
int main(int argc, char** argv) {
  CLI::App app{"asg: ASG Lab, animated sticker generation experiments"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("asg ") + ASG_VERSION + " (plugin API " + std::to_string(asg::kPluginApiMajor) + "." +
                                        std::to_string(asg::kPluginApiMinor) + ")");
  bool allow_plugin_path = false;
  app.add_flag("--allow-plugin-path", allow_plugin_path,
               "open the plugin libraries an experiment file's [runtime] plugin_path names (opening a library runs its code; "
               "without this flag such a file is refused)");
  std::string registry_path = "runs/registry.sqlite";
  std::string runs_dir = "runs";
  asg::cli::Action action;
  asg::cli::add_experiment_commands(app, action, registry_path, runs_dir);
  asg::cli::add_plugin_commands(app, action);
  asg::cli::add_registry_commands(app, action, registry_path, runs_dir);
  asg::cli::add_workflow_commands(app, action, registry_path, runs_dir);
  asg::cli::add_weights_commands(app, action);
  asg::cli::add_data_commands(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    asg::PluginLoadPolicy::process_default().allow_experiment_paths = allow_plugin_path;
    return action ? action() : 0;
  } catch (const asg::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return asg::exit_code_for(e.kind());
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
