// Cross-section checks of an experiment, each naming the key's file:line:col and what would be valid.
#include "cross_checks.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "asg/error.h"
#include "asg/names.h"

namespace asg::config {

void check_against_definition(const Experiment& exp, const BenchmarkDefinition& definition, const Origins& origins) {
  if (!definition.seeds.empty()) {
    const int64_t seed = exp.runtime.integer("seed");
    if (std::find(definition.seeds.begin(), definition.seeds.end(), seed) == definition.seeds.end()) {
      std::vector<std::string> seeds;
      for (int64_t s : definition.seeds) seeds.push_back(std::to_string(s));
      throw config_error(fmt::format("{}: [runtime] seed = {}, but benchmark '{}' (version {}, {}) is run with seeds {} (valid: one "
                                     "of them, or another [benchmark] name)",
                                     origins.where("runtime.seed"), seed, definition.name, definition.version,
                                     definition.file.string(), join(seeds, ", ")));
    }
  }
  if (!definition.tasks.empty()) {
    const std::string& task = exp.eval.str("task");
    if (std::find(definition.tasks.begin(), definition.tasks.end(), task) == definition.tasks.end())
      throw config_error(fmt::format("{}: [eval] task = \"{}\", but benchmark '{}' (version {}, {}) measures the tasks {} (valid: one "
                                     "of them, or another [benchmark] name)",
                                     origins.where("eval.task"), task, definition.name, definition.version, definition.file.string(),
                                     join(definition.tasks, ", ")));
  }
}

void check_conditioning(const Experiment& exp, const Origins& origins) {
  // An eval task gives frames only a model trained with image conditioning can take.
  const auto& tasks = exp.conditioning.strs("tasks");
  const std::string& eval_task = exp.eval.str("task");
  if (eval_task != "generation" && std::find(tasks.begin(), tasks.end(), eval_task) == tasks.end())
    throw config_error(fmt::format("{}: [eval] task = \"{}\" needs a model trained for it: [conditioning] tasks = [{}] does "
                                   "not include it (valid: add \"{}\" to [conditioning] tasks, or task = \"generation\")",
                                   origins.where("eval.task"), eval_task,
                                   tasks.empty() ? std::string() : "\"" + join(tasks, "\", \"") + "\"", eval_task));

  if (eval_task == "generation" && exp.eval.real("image_guidance_scale") != 0)
    throw config_error(fmt::format("{}: [eval] image_guidance_scale = {} guides on given frames, and task = \"generation\" gives none "
                                   "(valid: 0, or an image task)",
                                   origins.where("eval.image_guidance_scale"), exp.eval.real("image_guidance_scale")));
  const auto& text_dropout = exp.conditioning.reals("text_dropout");
  if (!text_dropout.empty() && text_dropout.size() != tasks.size())
    throw config_error(fmt::format("{}: [conditioning] text_dropout has {} entries for {} tasks (valid: one probability per entry of "
                                   "tasks, in its order, or none)",
                                   origins.where("conditioning.text_dropout"), text_dropout.size(), tasks.size()));
  if (exp.conditioning.str("curriculum") != "uniform" && tasks.empty())
    throw config_error(fmt::format("{}: [conditioning] curriculum = \"{}\" draws among tasks, and tasks is empty (valid: list the "
                                   "tasks, or curriculum = \"uniform\")",
                                   origins.where("conditioning.curriculum"), exp.conditioning.str("curriculum")));
}

}  // namespace asg::config
