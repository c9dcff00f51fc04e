// The commands that run experiments on a reviewer's or a student's behalf: reproduce (rerun with a verdict) and
// sweep (resumable grids). Registered like registry_commands.h.
#pragma once

#include "registry_commands.h"

namespace asg::cli {

void add_workflow_commands(CLI::App& app, Action& action, std::string& registry_path, std::string& runs_dir);

}  // namespace asg::cli
