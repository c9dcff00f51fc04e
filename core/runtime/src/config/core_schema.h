// The core's own sections of an experiment file ([train], [eval], [conditioning], [diffusion], [runtime], [data],
// [benchmark]): their keys, types, defaults and documentation (asg::core_sections), looked up by section.
// Internal to the runtime.
#pragma once

#include <string>
#include <vector>

#include "asg/experiment.h"

namespace asg::config {

// The specs of one core section; asg::Error(Internal) for a name that is none.
const std::vector<ParamSpec>& core_specs(const std::string& section);

}  // namespace asg::config
