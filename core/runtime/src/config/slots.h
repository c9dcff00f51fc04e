// An experiment's plugin slots: the five every experiment has, the optional ones, and its [[metrics]], each
// resolved against the plugin catalog and validated against its plugin's parameters. Internal to the runtime.
#pragma once

#include <toml++/toml.h>

#include <string>

#include "asg/experiment.h"
#include "asg/plugin_catalog.h"
#include "composition.h"

namespace asg::config {

struct SlotDef {
  const char* section;
  const char* kind;
};
inline constexpr SlotDef kSingleSlots[] = {{"dataset", "dataset"},   {"text_encoder", "text_encoder"}, {"backbone", "backbone"},
                                           {"temporal", "temporal"}, {"sampler", "sampler"}};
// Slots an experiment may leave out; without them the run is what it was before the kind existed
// (no [autoencoder]: pixel space; no [image_encoder]: no image embedding).
inline constexpr SlotDef kOptionalSlots[] = {{"autoencoder", "autoencoder"}, {"image_encoder", "image_encoder"}};

// What slots are resolved against: the catalog of plugins, where every key came from, the file for messages.
struct SlotContext {
  const PluginCatalog& catalog;
  const Origins& origins;
  std::string file_where;
};

// Adds the single and optional slots of `root` to exp.slots and their resolved tables to `resolved`.
// asg::Error(Config) for a missing single slot, an unknown plugin or a key its plugin does not take.
void resolve_plugin_slots(const SlotContext& context, const toml::table& root, Experiment& exp, toml::table& resolved);

// The same for the [[metrics]] entries: at least one, each a table, no metric twice.
void resolve_metric_slots(const SlotContext& context, const toml::table& root, Experiment& exp, toml::table& resolved);

}  // namespace asg::config
