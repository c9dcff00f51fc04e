// The commands over sticker files and manifests (asg data inspect, export-frames, synth, index, stats, check, pack)
// and `asg fd`. Registered like registry_commands.h.
#pragma once

#include "registry_commands.h"

namespace asg::cli {

void add_data_commands(CLI::App& app, Action& action);

}  // namespace asg::cli
