// The keys a model slot ([backbone], [autoencoder], [text_encoder]) takes besides its plugin's: init_from,
// init_sha256, init_allow_missing, read into asg::InitialWeights (asg/experiment.h). Internal to the core.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "asg/experiment.h"
#include "asg/params.h"
#include "composition.h"

namespace asg::config {

const std::vector<ParamSpec>& initial_weight_specs();

// The slot's pretrained weights from its values `all` (plugin keys and these), or nullopt without init_from.
// asg::Error(Config) naming the key's place when a key is set without init_from, init_sha256 is missing or not
// a sha256, or a folder holds no single-file checkpoint.
std::optional<InitialWeights> initial_weights(const Params& all, const std::string& section, const std::string& dotted,
                                              const Origins& origins);

}  // namespace asg::config
