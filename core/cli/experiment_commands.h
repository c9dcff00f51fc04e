// The commands that run and check experiments: run, resume, eval, validate, benchmarks. Registered like
// registry_commands.h.
#pragma once

#include "registry_commands.h"

namespace asg::cli {

void add_experiment_commands(CLI::App& app, Action& action, std::string& registry_path, std::string& runs_dir);

}  // namespace asg::cli
