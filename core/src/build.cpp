#include "asg/build.h"

#include <fmt/format.h>

#include <type_traits>

#include "asg/trainer.h"
#include "asg/util.h"
#include "asg/vocabulary.h"

namespace asg {

namespace {

// A metric that interprets labels needs them from the vocabulary it was written for.
void check_vocabulary(const Experiment& exp, const PluginSlot& metric, const PluginSlot& dataset, const DatasetInfo& info) {
  const Vocabulary& required = metric.record->factory.required_vocabulary;
  if (required.name.empty() || vocabulary_satisfies(info.vocabulary, required)) return;
  throw config_error(fmt::format(
      "{}: [{}] metric '{}' requires labels from the vocabulary {} (or a newer {}.x); [dataset] plugin '{}' provides {}. "
      "Pick a dataset that announces that vocabulary, or drop the metric.",
      exp.file.string(), metric.section, metric.plugin, required.text(), required.version.substr(0, required.version.find('.')),
      dataset.plugin, info.vocabulary.name.empty() ? std::string("no vocabulary") : "vocabulary " + info.vocabulary.text()));
}

}  // namespace

NoiseSchedule noise_schedule(const Experiment& exp) {
  return NoiseSchedule(exp.diffusion.str("schedule"), exp.diffusion.integer("timesteps"),
                       parse_prediction(exp.diffusion.str("prediction")), exp.diffusion.real("shift"));
}

BuiltExperiment build_experiment(const Experiment& exp, const NoiseSchedule& schedule, uint64_t seed) {
  BuiltExperiment b;
  const PluginSlot& ds = exp.slot("dataset");
  // Created through the slots' records, which own their library (see keep_library_alive), each from
  // its own seed stream.
  auto construct = [seed](const PluginSlot& slot, auto tag, const std::string& stream, auto&&... args) {
    using Interface = typename decltype(tag)::type;
    ScopedGlobalSeed init_seed(derive_seed(seed, "init." + stream));
    return create_from_record<Interface>(*slot.record, slot.params, args...);
  };
  auto create = [&exp, construct](const PluginSlot& slot, auto tag, const std::string& stream, auto&&... args) {
    try {
      return construct(slot, tag, stream, args...);
    } catch (const Error& e) {
      // A plugin refusing its parameters or the data: say which experiment file it came from.
      if (e.kind() != ErrorKind::Config) throw;
      throw config_error(fmt::format("{}: {}", exp.file.string(), e.what()));
    }
  };
  b.dataset = create(ds, std::type_identity<Dataset>{}, "dataset");
  b.info = b.dataset->info();
  const std::string& split = exp.eval.str("split");
  const Split eval_split = split_from_name(split);
  if (exp.train.integer("steps") > 0 && b.dataset->size(Split::Train) == 0)
    throw config_error(fmt::format("{}: [dataset] plugin '{}' has an empty train split but [train] steps = {}",
                                   exp.file.string(), ds.plugin, exp.train.integer("steps")));
  if (b.dataset->size(eval_split) == 0)
    throw config_error(fmt::format("{}: [eval] split = \"{}\": dataset '{}' has no samples in that split", exp.file.string(),
                                   split, ds.plugin));
  for (const PluginSlot* m : exp.metric_slots()) check_vocabulary(exp, *m, ds, b.info);
  b.text_encoder = create(exp.slot("text_encoder"), std::type_identity<TextEncoder>{}, "text_encoder");

  const PluginSlot& temporal = exp.slot("temporal");
  BackboneContext ctx;
  ctx.channels = 4;
  ctx.frames = b.info.frames;
  ctx.height = b.info.height;
  ctx.width = b.info.width;
  ctx.text_dim = b.text_encoder->dim();
  ctx.num_timesteps = schedule.num_timesteps();
  ctx.make_temporal = [&temporal, construct](const TemporalContext& tc) {
    try {
      return construct(temporal, std::type_identity<TemporalModule>{}, "temporal." + tc.name, tc);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Config) throw;
      throw config_error(fmt::format("{} (temporal insertion point '{}': {} channels, {} frames, {}x{})", e.what(), tc.name,
                                     tc.channels, tc.frames, tc.height, tc.width));
    }
  };
  b.backbone = create(exp.slot("backbone"), std::type_identity<Backbone>{}, "backbone", ctx);
  b.sampler = create(exp.slot("sampler"), std::type_identity<Sampler>{}, "sampler");
  MetricContext mctx{b.info, ds.plugin};
  for (const PluginSlot* m : exp.metric_slots())
    b.metrics.emplace_back(m, create(*m, std::type_identity<Metric>{}, m->section, mctx));
  return b;
}

}  // namespace asg
