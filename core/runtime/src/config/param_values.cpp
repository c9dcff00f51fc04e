// Checking values against parameter specs, and writing parameters back as TOML.
#include "param_values.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "asg/error.h"
#include "asg/names.h"

namespace asg::config {

namespace {

ParamValue convert(const ParamSpec& spec, const toml::node& node, const std::string& where, const std::string& section,
                   const fs::path& file_dir) {
  auto fail = [&](const std::string& problem, const std::string& hint = "") {
    std::string valid = fmt::format("{}{}", param_type_name(spec.type),
                                    spec.constraint_text().empty() ? "" : ", " + spec.constraint_text());
    return config_error(fmt::format("{}: [{}] {} = {}: {} (valid: {}).{}", where, section, spec.key, node_text(node),
                                    problem, valid, hint));
  };
  auto check_range = [&](double v) {
    if ((spec.min && v < *spec.min) || (spec.max && v > *spec.max)) throw fail("out of range");
  };
  auto check_choice = [&](const std::string& v) {
    if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end())
      throw fail("not an allowed value", did_you_mean(v, spec.choices));
  };
  auto as_int = [&](const toml::node& n) -> int64_t {
    if (auto i = n.as_integer()) { check_range(static_cast<double>(i->get())); return i->get(); }
    throw fail(fmt::format("expected an integer, got {}", node_type_name(n)));
  };
  auto as_float = [&](const toml::node& n) -> double {
    double v;
    if (auto i = n.as_integer()) v = static_cast<double>(i->get());
    else if (auto f = n.as_floating_point()) v = f->get();
    else throw fail(fmt::format("expected a number, got {}", node_type_name(n)));
    if (!std::isfinite(v)) throw fail("must be finite");
    check_range(v);
    return v;
  };
  auto as_string = [&](const toml::node& n) -> std::string {
    if (auto s = n.as_string()) { check_choice(s->get()); return s->get(); }
    throw fail(fmt::format("expected a string, got {}", node_type_name(n)));
  };
  auto as_array = [&]() -> const toml::array& {
    auto a = node.as_array();
    if (!a) throw fail(fmt::format("expected an array, got {}", node_type_name(node)));
    auto n = static_cast<int64_t>(a->size());
    if ((spec.min_length && n < *spec.min_length) || (spec.max_length && n > *spec.max_length))
      throw fail(fmt::format("has {} items", n));
    return *a;
  };
  switch (spec.type) {
    case ParamType::Int: return as_int(node);
    case ParamType::Float: return as_float(node);
    case ParamType::Bool:
      if (auto b = node.as_boolean()) return b->get();
      throw fail(fmt::format("expected true or false, got {}", node_type_name(node)));
    case ParamType::String: return as_string(node);
    case ParamType::Path: {
      std::string s = as_string(node);
      if (s.empty()) return s;
      fs::path p = fs::path(s).is_absolute() ? fs::path(s) : file_dir / s;
      if (!fs::exists(p)) throw fail(fmt::format("file not found (looked for {})", p.lexically_normal().string()));
      return fs::absolute(p).lexically_normal().string();
    }
    case ParamType::IntList: {
      std::vector<int64_t> out;
      for (auto&& e : as_array()) out.push_back(as_int(e));
      return out;
    }
    case ParamType::FloatList: {
      std::vector<double> out;
      for (auto&& e : as_array()) out.push_back(as_float(e));
      return out;
    }
    case ParamType::StringList: {
      std::vector<std::string> out;
      for (auto&& e : as_array()) out.push_back(as_string(e));
      return out;
    }
  }
  throw internal_error("unhandled param type");
}

}  // namespace

Params validate_table(const toml::table& table, const std::vector<ParamSpec>& specs, const std::string& section,
                      const std::string& owner, const std::string& table_where, const std::string& dotted_prefix,
                      const Origins& origins, const std::set<std::string>& skip) {
  std::vector<std::string> valid_keys;
  for (const auto& s : specs) valid_keys.push_back(s.key);
  for (auto&& [key, value] : table) {
    std::string k(key.str());
    if (skip.count(k)) continue;
    if (std::none_of(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.key == k; })) {
      throw config_error(fmt::format("{}: [{}] unknown key '{}' for {} (valid keys: {}).{}",
                                     origins.where_key(dotted_prefix + k), section, k, owner,
                                     valid_keys.empty() ? "none" : join(valid_keys, ", "), did_you_mean(k, valid_keys)));
    }
  }
  std::map<std::string, ParamValue> values;
  for (const auto& spec : specs) {
    if (auto node = table.get(spec.key)) {
      values[spec.key] = convert(spec, *node, origins.where(dotted_prefix + spec.key), section,
                                 origins.dir_of(dotted_prefix + spec.key));
    } else if (spec.required) {
      throw config_error(fmt::format("{}: [{}] missing required key '{}' for {}: {} ({})", table_where, section,
                                     spec.key, owner, spec.doc, param_type_name(spec.type)));
    } else {
      values[spec.key] = spec.default_value;
    }
  }
  return Params(owner, std::move(values));
}

namespace {

struct PutValue {
  toml::table& t;
  const std::string& key;
  void operator()(int64_t x) const { t.insert_or_assign(key, x); }
  void operator()(double x) const { t.insert_or_assign(key, x); }
  void operator()(bool x) const { t.insert_or_assign(key, x); }
  void operator()(const std::string& x) const { t.insert_or_assign(key, x); }
  template <typename E>
  void operator()(const std::vector<E>& xs) const {
    toml::array a;
    for (const auto& x : xs) a.push_back(x);
    t.insert_or_assign(key, std::move(a));
  }
};

void put_value(toml::table& t, const std::string& key, const ParamValue& v) { std::visit(PutValue{t, key}, v); }

}  // namespace

toml::table params_table(const Params& p) {
  toml::table t;
  for (const auto& [k, v] : p.values()) put_value(t, k, v);
  return t;
}

std::string to_toml_text(const toml::table& t) {
  std::ostringstream ss;
  ss << toml::toml_formatter(t, toml::format_flags::indentation | toml::format_flags::allow_literal_strings) << "\n";
  return ss.str();
}

}  // namespace asg::config
