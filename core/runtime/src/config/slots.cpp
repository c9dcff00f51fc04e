// Resolving plugin slots against the catalog.
#include "slots.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "asg/error.h"
#include "asg/names.h"
#include "initial_weight_keys.h"
#include "param_values.h"

namespace asg::config {

namespace {

// One plugin slot ([section] or a [[metrics]] entry): its plugin known to the catalog, its keys checked against the
// plugin's parameters (and, for model slots, the initial-weight keys), and its resolved table.
std::pair<PluginSlot, toml::table> resolve_slot(const SlotContext& context, const toml::table& t, const std::string& section,
                                                const std::string& dotted, const std::string& kind, const std::string& where) {
  const PluginCatalog& catalog = context.catalog;
  const Origins& origins = context.origins;
  auto plugin_node = t.get("plugin");
  auto known = catalog.names(kind);
  if (!plugin_node || !plugin_node->is_string()) {
    throw config_error(fmt::format("{}: [{}] needs plugin = \"<name>\" naming a {} plugin (known: {})", where, section,
                                   kind, known.empty() ? "none" : join(known, ", ")));
  }
  std::string name = plugin_node->as_string()->get();
  if (std::find(known.begin(), known.end(), name) == known.end()) {
    throw config_error(fmt::format("{}: [{}] plugin = \"{}\": unknown {} plugin (known: {}).{}",
                                   origins.where(dotted + "plugin"), section, name, kind,
                                   known.empty() ? "none" : join(known, ", "), did_you_mean(name, known)));
  }
  std::shared_ptr<const PluginRecord> record = catalog.find(kind, name);
  std::string owner = fmt::format("{} '{}'", kind, name);
  // Model slots also take the initial-weight keys; they are validated with the plugin's own, so an unknown
  // key's message lists both.
  const bool takes_weights =
      section == "backbone" || section == "autoencoder" || section == "text_encoder" || section == "image_encoder";
  std::vector<ParamSpec> specs = record->factory.params;
  if (takes_weights) specs.insert(specs.end(), initial_weight_specs().begin(), initial_weight_specs().end());
  Params all = validate_table(t, specs, section, owner, where, dotted, origins, {"plugin"});
  std::map<std::string, ParamValue> plugin_values = all.values();
  std::optional<InitialWeights> init;
  if (takes_weights) {
    init = initial_weights(all, section, dotted, origins);
    for (const auto& spec : initial_weight_specs()) plugin_values.erase(spec.key);
  }
  Params params(owner, std::move(plugin_values));
  toml::table out = params_table(params);
  out.insert_or_assign("plugin", name);
  if (init) {
    out.insert_or_assign("init_from", init->file.string());
    out.insert_or_assign("init_sha256", init->sha256);
    toml::array patterns;
    for (const auto& p : init->allow_missing) patterns.push_back(p);
    if (!patterns.empty()) out.insert_or_assign("init_allow_missing", std::move(patterns));
  }
  PluginSlot slot{section, kind, name, std::move(params), std::move(record), std::move(init)};
  return std::make_pair(std::move(slot), std::move(out));
}

}  // namespace

void resolve_plugin_slots(const SlotContext& context, const toml::table& root, Experiment& exp, toml::table& resolved) {
  const PluginCatalog& catalog = context.catalog;
  const Origins& origins = context.origins;
  const std::string& file_where = context.file_where;
  for (const auto& def : kSingleSlots) {
    auto node = root.get(def.section);
    if (!node) {
      auto known = catalog.names(def.kind);
      throw config_error(fmt::format("{}: missing [{}] table: add one with plugin = \"<name>\" (known {} plugins: {})",
                                     file_where, def.section, def.kind, known.empty() ? "none" : join(known, ", ")));
    }
    auto [slot, table] = resolve_slot(context, *node->as_table(), def.section, std::string(def.section) + ".", def.kind,
                                      origins.where(def.section));
    exp.slots.push_back(std::move(slot));
    resolved.insert_or_assign(def.section, std::move(table));
  }

  for (const auto& def : kOptionalSlots) {
    auto node = root.get(def.section);
    if (!node) continue;
    auto [slot, table] = resolve_slot(context, *node->as_table(), def.section, std::string(def.section) + ".", def.kind,
                                      origins.where(def.section));
    exp.slots.push_back(std::move(slot));
    resolved.insert_or_assign(def.section, std::move(table));
  }
}

void resolve_metric_slots(const SlotContext& context, const toml::table& root, Experiment& exp, toml::table& resolved) {
  const PluginCatalog& catalog = context.catalog;
  const Origins& origins = context.origins;
  const std::string& file_where = context.file_where;
  auto metrics_node = root.get("metrics");
  if (!metrics_node || !metrics_node->is_array() || metrics_node->as_array()->empty()) {
    throw config_error(fmt::format("{}: no metrics: add at least one [[metrics]] table with plugin = \"<name>\" (known: {})",
                                   metrics_node ? origins.where("metrics") : file_where,
                                   join(catalog.names("metric"), ", ")));
  }
  toml::array resolved_metrics;
  std::set<std::string> seen_metrics;
  size_t index = 0;
  for (auto&& item : *metrics_node->as_array()) {
    std::string section = fmt::format("metrics[{}]", index);
    if (!item.is_table())
      throw config_error(fmt::format("{}: each metrics entry must be a table ([[metrics]]), got {}",
                                     origins.where(fmt::format("metrics.{}", index)), node_type_name(item)));
    auto [slot, table] = resolve_slot(context, *item.as_table(), section, fmt::format("metrics.{}.", index), "metric",
                                      origins.where(fmt::format("metrics.{}", index)));
    if (!seen_metrics.insert(slot.plugin).second)
      throw config_error(fmt::format("{}: metric '{}' is listed twice", origins.where(fmt::format("metrics.{}", index)), slot.plugin));
    exp.slots.push_back(std::move(slot));
    resolved_metrics.push_back(std::move(table));
    ++index;
  }
  resolved.insert_or_assign("metrics", std::move(resolved_metrics));
}

}  // namespace asg::config
