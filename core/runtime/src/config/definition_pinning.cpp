#include "definition_pinning.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "asg/error.h"
#include "asg/names.h"
#include "asg/toml_where.h"

namespace asg::config {

namespace {

// Equal as TOML values, with 3 == 3.0 (a float key written as an integer is the same number).
bool same_value(const toml::node& a, const toml::node& b) {
  auto number = [](const toml::node& n) -> std::optional<double> {
    if (auto i = n.as_integer()) return static_cast<double>(i->get());
    if (auto f = n.as_floating_point()) return f->get();
    return std::nullopt;
  };
  if (auto x = number(a)) {
    auto y = number(b);
    return y && *x == *y;
  }
  if (auto x = a.as_array()) {
    auto y = b.as_array();
    if (!y || x->size() != y->size()) return false;
    for (size_t i = 0; i < x->size(); ++i)
      if (!same_value(*x->get(i), *y->get(i))) return false;
    return true;
  }
  if (auto x = a.as_string()) return b.as_string() && x->get() == b.as_string()->get();
  if (auto x = a.as_boolean()) return b.as_boolean() && x->get() == b.as_boolean()->get();
  return false;
}

// Pins an experiment's composed config to its benchmark's definition (see benchmark_definition.h): fills in
// what the experiment leaves out, refuses what it sets otherwise. Returns the dataset keys the definition pins.
class DefinitionPinning {
 public:
  DefinitionPinning(const BenchmarkDefinition& def, const toml::table& def_root, Origins& origins)
      : def_(def), def_root_(def_root), origins_(origins) {}

  std::vector<std::string> pin(toml::table& root) {
    std::vector<std::string> dataset_keys;
    if (const auto* dataset = def_root_.get_as<toml::table>("dataset")) {
      pin_slot(root, "dataset", *dataset);
      for (auto&& [key, value] : *dataset)
        if (key.str() != "plugin") dataset_keys.emplace_back(key.str());
    }
    if (const auto* sampler = def_root_.get_as<toml::table>("sampler")) pin_slot(root, "sampler", *sampler);
    if (const auto* eval = def_root_.get_as<toml::table>("eval")) pin_keys(table_in(root, "eval"), *eval, "eval");
    toml::table header;
    header.insert("version", def_.version);
    if (!def_.rank_by.empty()) header.insert("rank_by", def_.rank_by);
    pin_keys(table_in(root, "benchmark"), header, "benchmark", /*from_header=*/true);
    if (const auto* metrics = def_root_.get_as<toml::array>("metrics")) pin_metrics(root, *metrics);
    return dataset_keys;
  }

 private:
  std::string label() const { return fmt::format("benchmark '{}' (version {})", def_.name, def_.version); }
  std::string def_where(const toml::node& node) const { return toml_where(def_.file, node); }
  toml::table& table_in(toml::table& root, const std::string& section) {
    if (!root.get(section)) root.insert(section, toml::table{});
    return *root.get_as<toml::table>(section);
  }
  void record(const std::string& dotted, const toml::node& def_value) {
    origins_.values[dotted] = origins_.keys[dotted] = def_where(def_value);
    origins_.dirs[dotted] = def_.file.parent_path();
    if (const auto* t = def_value.as_table())
      for (auto&& [key, value] : *t) record(dotted + "." + std::string(key.str()), value);
  }
  void pin_keys(toml::table& exp, const toml::table& def, const std::string& dotted_section, bool from_header = false) {
    for (auto&& [key, def_value] : def) {
      const std::string k(key.str());
      const std::string dotted = dotted_section + "." + k;
      if (const auto* exp_value = exp.get(k)) {
        if (!same_value(*exp_value, def_value))
          throw config_error(fmt::format("{}: [{}] {} = {}, but {} measures {} = {} ({}); set it to {}, or leave it out, or give "
                                         "this experiment another [benchmark] name for another protocol",
                                         origins_.where(dotted), section_label(dotted_section), k, node_text(*exp_value), label(),
                                         k, node_text(def_value), from_header ? def_.file.string() : def_where(def_value),
                                         node_text(def_value)));
        continue;
      }
      def_value.visit([&](auto&& n) { exp.insert_or_assign(k, n); });
      if (!from_header) record(dotted, def_value);
    }
  }
  static std::string section_label(const std::string& dotted_section) {
    // "metrics.1" -> "metrics[1]"
    const size_t dot = dotted_section.find('.');
    return dot == std::string::npos ? dotted_section
                                    : dotted_section.substr(0, dot) + "[" + dotted_section.substr(dot + 1) + "]";
  }
  void pin_slot(toml::table& root, const std::string& section, const toml::table& def) {
    const std::string& plugin = def.get_as<std::string>("plugin")->get();
    if (const auto* exp = root.get_as<toml::table>(section)) {
      const auto* exp_plugin = exp->get_as<std::string>("plugin");
      if (exp_plugin && exp_plugin->get() != plugin)
        throw config_error(fmt::format("{}: [{}] plugin = \"{}\", but {} measures with [{}] plugin = \"{}\" ({}); use it, or "
                                       "give this experiment another [benchmark] name for another protocol",
                                       origins_.where(section + ".plugin"), section, exp_plugin->get(), label(), section, plugin,
                                       def_where(*def.get("plugin"))));
    }
    pin_keys(table_in(root, section), def, section);
  }
  void pin_metrics(toml::table& root, const toml::array& def) {
    auto plugin_of = [](const toml::node& n) -> std::string {
      const auto* t = n.as_table();
      const auto* p = t ? t->get_as<std::string>("plugin") : nullptr;
      return p ? p->get() : std::string();
    };
    std::vector<std::string> measured;
    for (const auto& m : def) measured.push_back(plugin_of(m));
    auto* exp = root.get_as<toml::array>("metrics");
    if (!exp) {  // no [[metrics]]: the definition's, as written there
      root.insert_or_assign("metrics", def);
      for (size_t i = 0; i < def.size(); ++i) record(fmt::format("metrics.{}", i), *def.get(i));
      return;
    }
    for (size_t i = 0; i < exp->size(); ++i) {
      const std::string plugin = plugin_of(*exp->get(i));
      auto it = std::find(measured.begin(), measured.end(), plugin);
      if (it == measured.end())
        throw config_error(fmt::format("{}: [[metrics]] plugin = \"{}\": {} measures exactly {} ({}); remove it, or leave "
                                       "[[metrics]] out to take the benchmark's, or give this experiment another [benchmark] name",
                                       origins_.where(fmt::format("metrics.{}", i)), plugin, label(), join(measured, ", "),
                                       def_.file.string()));
      pin_keys(*exp->get(i)->as_table(), *def.get(static_cast<size_t>(it - measured.begin()))->as_table(),
               fmt::format("metrics.{}", i));
    }
    for (size_t j = 0; j < def.size(); ++j) {
      const bool listed = std::any_of(exp->begin(), exp->end(), [&](const toml::node& n) { return plugin_of(n) == measured[j]; });
      if (!listed)
        throw config_error(fmt::format("{}: {} also measures metric '{}' ({}): add a [[metrics]] table with plugin = \"{}\", or "
                                       "leave [[metrics]] out to take the benchmark's",
                                       origins_.where("metrics"), label(), measured[j], def_where(*def.get(j)), measured[j]));
    }
  }

  const BenchmarkDefinition& def_;
  const toml::table& def_root_;
  Origins& origins_;
};

}  // namespace

std::vector<std::string> pin_to_definition(const BenchmarkDefinition& def, const toml::table& def_root, Origins& origins,
                                           toml::table& root) {
  return DefinitionPinning(def, def_root, origins).pin(root);
}

BenchmarkDefinition definition_named(const std::string& name) {
  const auto search_path = benchmark_search_path();
  if (auto def = find_benchmark(name, search_path)) return *def;
  std::vector<std::string> names, dirs;
  for (const auto& d : discover_benchmarks(search_path)) names.push_back(d.name);
  for (const auto& d : search_path) dirs.push_back(d.string());
  throw config_error(fmt::format("no benchmark definition named '{}' (known: {}; searched: {}).{}", name,
                                 names.empty() ? "none" : join(names, ", "), dirs.empty() ? "nothing" : join(dirs, ":"),
                                 did_you_mean(name, names)));
}

void put_under_benchmark(toml::table& root, Origins& origins, const std::string& under_benchmark) {
  const BenchmarkDefinition def = definition_named(under_benchmark);
  const toml::table under_root = toml::parse_file(def.file.string());
  if (under_root.contains("sampler")) root.erase("sampler");
  if (const auto* metrics = under_root.get_as<toml::array>("metrics")) {
    root.insert_or_assign("metrics", *metrics);
    for (size_t i = 0; i < metrics->size(); ++i) {
      const std::string item = fmt::format("metrics.{}", i);
      origins.values[item] = Origins::position(metrics->get(i)->source());
      origins.dirs[item] = def.file.parent_path();
      if (const auto* t = metrics->get(i)->as_table()) origins.record(*t, item + ".");
    }
  }
  if (const auto* eval = under_root.get_as<toml::table>("eval"))
    if (auto* own = root.get_as<toml::table>("eval"))
      for (auto&& [key, value] : *eval) own->erase(key);
  root.insert_or_assign("benchmark", toml::table{{"name", under_benchmark}});
}

}  // namespace asg::config
