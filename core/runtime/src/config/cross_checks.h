// Checks between keys of different sections that each section's own schema cannot make: the run against its
// benchmark definition's seeds and tasks, and the evaluation task against the conditioning it trained with.
// Internal to the runtime.
#pragma once

#include "asg/benchmark_definition.h"
#include "asg/experiment.h"
#include "composition.h"

namespace asg::config {

// [runtime] seed among the definition's seeds and [eval] task among its tasks (when it lists them).
void check_against_definition(const Experiment& exp, const BenchmarkDefinition& definition, const Origins& origins);

// [eval] task trained for in [conditioning] tasks; image guidance only with an image task; one text_dropout per
// task; a curriculum only with tasks to draw from.
void check_conditioning(const Experiment& exp, const Origins& origins);

}  // namespace asg::config
