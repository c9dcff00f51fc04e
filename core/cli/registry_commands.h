// The commands that read and tidy the registry: leaderboard, summary, compare, runs (list, show, rm, gc, export,
// import). Each adds itself to the CLI and, when chosen, sets `action` to what main() runs inside its error
// handling.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace asg::cli {

using Action = std::function<int()>;

// `registry_path` is the shared --registry default (runs/registry.sqlite); `runs_dir` the shared --runs-dir.
void add_registry_commands(CLI::App& app, Action& action, std::string& registry_path, std::string& runs_dir);

// "2026-12-02 18:52:13" (UTC).
std::string format_time(int64_t ms);

}  // namespace asg::cli
