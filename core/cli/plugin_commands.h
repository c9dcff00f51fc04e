// The commands for plugin authors: asg plugins (list, show NAME, test NAME) and asg new plugin. Registered like
// registry_commands.h.
#pragma once

#include "registry_commands.h"

namespace asg::cli {

void add_plugin_commands(CLI::App& app, Action& action);

}  // namespace asg::cli
