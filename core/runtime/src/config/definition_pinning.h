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

// The definition of benchmark `name`; asg::Error(Config) listing the known ones and the folders searched.
BenchmarkDefinition definition_named(const std::string& name);

// `asg eval RUN --benchmark NAME`: the composed experiment `root` measured under that benchmark. Its sampler,
// metrics and pinned [eval] keys become the definition's (before the overrides, so that --set metrics.0.model=...
// can give a metric's file); everything else stays the experiment's, and pinning still refuses what does not fit
// (e.g. data the model was not trained on).
void put_under_benchmark(toml::table& root, Origins& origins, const std::string& under_benchmark);

}  // namespace asg::config
