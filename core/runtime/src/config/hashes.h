// The three hashes of an experiment: the config hash (the resolved file), the method hash (what trains: model
// slots with their libraries and initial weights, [train], [diffusion], [data], [conditioning], seed, precision)
// and the protocol hash (what is measured: benchmark, [eval], references, sampler, metrics). Internal to the runtime.
#pragma once

#include <toml++/toml.h>

#include <string>

#include "asg/experiment.h"

namespace asg::config {

// sha256 of the resolved config (`resolved`: every section with its defaults filled in), less the core keys
// added after runs were recorded while they are at their default (so those runs keep their config hash).
std::string config_hash(const toml::table& resolved, const Experiment& exp);

// Sets exp.method_hash, exp.protocol_json and exp.protocol_hash from its slots and core sections.
void compute_method_and_protocol(Experiment& exp);

}  // namespace asg::config
