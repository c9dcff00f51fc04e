// `asg weights`: import published pretrained weights as an ASG Lab weight file (import), and say what a weight
// file holds and where it came from (show). Registered like registry_commands.h.
#pragma once

#include "registry_commands.h"

namespace asg::cli {

void add_weights_commands(CLI::App& app, Action& action);

}  // namespace asg::cli
