// Loading a model slot's pretrained weights ([backbone] init_from, see asg::InitialWeights) into the module
// its plugin built: checked against the recorded sha256 first, then by name, every tensor accounted for.
#pragma once

#include <torch/torch.h>

#include "asg/experiment.h"

namespace asg {

// No-op without slot.init. asg::Error(Config) naming the experiment's key when the file's sha256 is not
// init_sha256, or when a tensor is missing, extra or shaped differently (nothing is loaded then).
void load_initial_weights(const PluginSlot& slot, torch::nn::Module& module);

}  // namespace asg
