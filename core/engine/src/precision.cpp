// parse_precision.
#include "asg/precision.h"

#include <fmt/format.h>

#include "asg/error.h"

namespace asg {

Precision parse_precision(const std::string& text, const std::string& key) {
  if (text == "fp32") return Precision::Float32;
  if (text == "bf16") return Precision::BFloat16;
  if (text == "fp16") return Precision::Float16;
  throw config_error(fmt::format("{} = \"{}\": unknown precision (valid: \"fp32\", \"bf16\", \"fp16\")", key, text));
}

}  // namespace asg
