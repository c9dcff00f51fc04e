// The names of the diffusion parameterisations and noise schedules, without torch: the [diffusion]
// schema (asg/experiment.h) and NoiseSchedule (asg/diffusion.h) read the same tables.
#pragma once

#include <string>

#include "asg/params.h"

namespace asg {

enum class Prediction { Epsilon, V, X0 };
inline const EnumNames<Prediction>& prediction_names() {
  static const EnumNames<Prediction> names{{Prediction::Epsilon, "eps"}, {Prediction::V, "v"}, {Prediction::X0, "x0"}};
  return names;
}
inline Prediction parse_prediction(const std::string& name) { return prediction_names().parse(name, "prediction"); }

enum class ScheduleKind { Cosine, Linear, ScaledLinear };
inline const EnumNames<ScheduleKind>& schedule_names() {
  static const EnumNames<ScheduleKind> names{
      {ScheduleKind::Cosine, "cosine"}, {ScheduleKind::Linear, "linear"}, {ScheduleKind::ScaledLinear, "scaled_linear"}};
  return names;
}

}  // namespace asg
