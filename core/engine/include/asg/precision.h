// The precision of the backbone's forward: [runtime] precision.
// Host-only.
#pragma once

#include <string>

namespace asg {

// The precision of the backbone's forward ([runtime] precision: fp32, bf16, fp16).
enum class Precision { Float32, BFloat16, Float16 };
// "fp32", "bf16" or "fp16"; anything else is an asg::Error(Config) naming `key`.
Precision parse_precision(const std::string& text, const std::string& key);

}  // namespace asg
