// Pins an experiment's composed config to its benchmark's definition (see asg/benchmark_definition.h): fills in
// what the experiment leaves out, refuses what it sets otherwise, naming both files. Internal to the core.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <vector>

#include "asg/benchmark_definition.h"
#include "composition.h"

namespace asg::config {

// Pins `root` (the experiment, composed) to `def` (parsed from `def_root`), recording the pinned keys' origins
// in the definition file. Returns the dataset keys the definition pins.
std::vector<std::string> pin_to_definition(const BenchmarkDefinition& def, const toml::table& def_root, Origins& origins,
                                           toml::table& root);

}  // namespace asg::config
