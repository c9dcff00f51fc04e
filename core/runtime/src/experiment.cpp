// Loading an experiment file: composition, benchmark pinning, the core's sections, the plugin slots, the checks
// between sections and the hashes, each in its own file under config/; this file composes them.
#include "asg/experiment.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <optional>

#include "asg/benchmark_definition.h"
#include "asg/names.h"
#include "config/composition.h"
#include "config/core_schema.h"
#include "config/cross_checks.h"
#include "config/definition_pinning.h"
#include "config/hashes.h"
#include "config/param_values.h"
#include "config/slots.h"

namespace asg {

namespace fs = std::filesystem;
using config::node_type_name;
using config::Origins;
using config::params_table;
using config::validate_table;

bool Experiment::has_slot(const std::string& section) const {
  return std::any_of(slots.begin(), slots.end(), [&](const PluginSlot& s) { return s.section == section; });
}

const PluginSlot& Experiment::slot(const std::string& section) const {
  for (const auto& s : slots)
    if (s.section == section) return s;
  throw internal_error("experiment has no slot " + section);
}

std::vector<const PluginSlot*> Experiment::metric_slots() const {
  std::vector<const PluginSlot*> out;
  for (const auto& s : slots)
    if (s.kind == "metric") out.push_back(&s);
  return out;
}

namespace {

// Every top-level key is a core section, a slot, name, description or metrics; every section is a table.
void check_top_level_keys(const toml::table& root, const Origins& origins) {
  std::vector<std::string> top_keys = {"name", "description", "metrics"};
  for (const auto& s : config::kSingleSlots) top_keys.push_back(s.section);
  for (const auto& s : config::kOptionalSlots) top_keys.push_back(s.section);
  for (const auto& s : core_sections()) top_keys.push_back(s.name);
  for (auto&& [key, value] : root) {
    std::string k(key.str());
    if (std::find(top_keys.begin(), top_keys.end(), k) == top_keys.end()) {
      throw config_error(fmt::format("{}: unknown top-level key '{}' (valid: base, {}).{}", origins.where_key(k), k,
                                     join(top_keys, ", "), did_you_mean(k, top_keys)));
    }
    if (k != "name" && k != "description" && k != "metrics" && !value.is_table()) {
      throw config_error(fmt::format("{}: '{}' must be a table ([{}]), got {}", origins.where(k), k, k, node_type_name(value)));
    }
  }
}

// The core sections validated into `exp` and `resolved`. [runtime] plugin_path is made absolute against the file
// that named it, and recorded so: the stored config of a run then finds the same plugins from any folder (asg
// reproduce and asg eval load it from elsewhere). "cuda:N" has a number in it, so it is checked here rather
// than by a fixed list of choices.
void read_core_sections(const toml::table& root, const Origins& origins, const std::string& file_where, Experiment& exp,
                        toml::table& resolved) {
  auto core_params = [&](const CoreSection& section) {
    const toml::table empty;
    const toml::table* t = root[section.name].as_table();
    return validate_table(t ? *t : empty, section.params, section.name, "[" + section.name + "]",
                          file_where, section.name + ".", origins);
  };
  for (const auto& section : core_sections()) {
    Params p = core_params(section);
    if (section.name == "runtime") {
      // Plugin directories are resolved against the file that named them, and recorded so: the stored config of a
      // run then finds the same plugins from any folder (asg reproduce and asg eval load it from elsewhere).
      auto values = p.values();
      std::vector<std::string> absolute;
      for (const auto& entry : p.strs("plugin_path")) {
        const fs::path path(entry);
        absolute.push_back((path.is_absolute() ? path : fs::absolute(origins.dir_of("runtime.plugin_path") / path)).lexically_normal().string());
      }
      values["plugin_path"] = absolute;
      p = Params(p.owner(), std::move(values));
    }
    resolved.insert_or_assign(section.name, params_table(p));
    if (section.name == "train") exp.train = p;
    else if (section.name == "eval") exp.eval = p;
    else if (section.name == "diffusion") exp.diffusion = p;
    else if (section.name == "runtime") {
      exp.runtime = p;
      // "cuda:N" has a number in it, so it is checked here rather than by a fixed list of choices.
      const std::string& device = p.str("device");
      const bool numbered = device.size() > 5 && device.rfind("cuda:", 0) == 0 &&
                            device.find_first_not_of("0123456789", 5) == std::string::npos && device.size() <= 9;
      if (device != "cpu" && device != "cuda" && device != "auto" && !numbered)
        throw config_error(fmt::format("{}: [runtime] device = \"{}\": not a device (valid: \"cpu\", \"cuda\", \"cuda:N\" "
                                       "with N the GPU's index, \"auto\")",
                                       origins.where("runtime.device"), device));
    }
    else if (section.name == "data") exp.data = p;
    else if (section.name == "conditioning") exp.conditioning = p;
    else if (section.name == "benchmark") exp.benchmark = p;
  }
}

// `under_benchmark` (asg eval): the experiment's own protocol gives way to that benchmark's definition.
Experiment load_experiment_impl(const fs::path& file, const std::vector<std::string>& overrides, PluginCatalog& catalog,
                                const std::string& under_benchmark) {
  std::vector<fs::path> stack;
  Origins origins;
  origins.fallback = file.string();
  toml::table root = config::compose_file(file, stack, origins);
  if (!under_benchmark.empty()) config::put_under_benchmark(root, origins, under_benchmark);
  for (const auto& o : overrides) config::apply_override(root, o, origins);
  const std::string file_where = file.string();

  // A benchmark with a definition file pins what its runs measure (benchmark_definition.h).
  std::optional<BenchmarkDefinition> definition;
  std::vector<std::string> reference_keys;
  if (const auto* benchmark_name = root["benchmark"]["name"].as_string(); benchmark_name && !benchmark_name->get().empty()) {
    definition = find_benchmark(benchmark_name->get(), benchmark_search_path());
    if (definition) reference_keys = config::pin_to_definition(*definition, toml::parse_file(definition->file.string()), origins, root);
  }
  check_top_level_keys(root, origins);

  Experiment exp;
  exp.file = file;
  exp.name = root["name"].value_or(file.stem().string());
  exp.description = root["description"].value_or(std::string());
  // Core sections first: [runtime] plugin_path decides which plugins exist.
  toml::table resolved;
  read_core_sections(root, origins, file_where, exp, resolved);
  if (definition) config::check_against_definition(exp, *definition, origins);
  exp.benchmark_definition = definition;
  exp.reference_keys = reference_keys;

  catalog.load_path(PluginCatalog::search_path({}));
  std::vector<fs::path> experiment_entries;
  for (const auto& entry : exp.runtime.strs("plugin_path")) experiment_entries.push_back(entry);  // absolute (above)
  catalog.load_experiment_plugin_path(experiment_entries, origins.where("runtime.plugin_path"));
  const config::SlotContext slots{catalog, origins, file_where};
  config::resolve_plugin_slots(slots, root, exp, resolved);
  config::check_conditioning(exp, origins);
  config::resolve_metric_slots(slots, root, exp, resolved);

  exp.config_hash = config::config_hash(resolved, exp);
  config::compute_method_and_protocol(exp);
  toml::table with_meta = resolved;
  with_meta.insert_or_assign("name", exp.name);
  if (!exp.description.empty()) with_meta.insert_or_assign("description", exp.description);
  exp.resolved_toml = config::to_toml_text(with_meta);
  return exp;
}

}  // namespace

Experiment load_experiment(const fs::path& file, const std::vector<std::string>& overrides, PluginCatalog& catalog) {
  return load_experiment_impl(file, overrides, catalog, "");
}

Experiment load_experiment_under_benchmark(const fs::path& file, const std::string& benchmark,
                                           const std::vector<std::string>& overrides, PluginCatalog& catalog) {
  if (benchmark.empty()) throw config_error("asg eval needs --benchmark NAME (asg benchmarks lists them)");
  return load_experiment_impl(file, overrides, catalog, benchmark);
}

}  // namespace asg
