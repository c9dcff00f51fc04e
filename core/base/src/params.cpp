#include "asg/params.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "asg/error.h"

namespace asg {

const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
    case ParamType::String: return "string";
    case ParamType::IntList: return "int list";
    case ParamType::FloatList: return "float list";
    case ParamType::StringList: return "string list";
    case ParamType::Path: return "path";
  }
  return "?";
}

namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') { out += "\\n"; continue; }
    out += c;
  }
  return out + "\"";
}

std::string format_double(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{:.1f}", v);
  return fmt::format("{}", v);
}

}  // namespace

std::string format_param_value(const ParamValue& value) {
  struct Visitor {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return format_double(v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return quote(v); }
    std::string operator()(const std::vector<int64_t>& v) const { return fmt::format("[{}]", fmt::join(v, ", ")); }
    std::string operator()(const std::vector<double>& v) const {
      std::vector<std::string> parts;
      for (double d : v) parts.push_back(format_double(d));
      return fmt::format("[{}]", fmt::join(parts, ", "));
    }
    std::string operator()(const std::vector<std::string>& v) const {
      std::vector<std::string> parts;
      for (const auto& s : v) parts.push_back(quote(s));
      return fmt::format("[{}]", fmt::join(parts, ", "));
    }
  };
  return std::visit(Visitor{}, value);
}

std::string ParamSpec::constraint_text() const {
  std::vector<std::string> parts;
  auto num = [&](double v) {
    return (type == ParamType::Int || type == ParamType::IntList) ? fmt::format("{}", static_cast<int64_t>(v))
                                                                  : format_double(v);
  };
  if (min && max) parts.push_back(fmt::format("{} <= x <= {}", num(*min), num(*max)));
  else if (min) parts.push_back(fmt::format("x >= {}", num(*min)));
  else if (max) parts.push_back(fmt::format("x <= {}", num(*max)));
  if (!choices.empty()) parts.push_back(fmt::format("one of: {}", fmt::join(choices, ", ")));
  if (min_length && max_length) parts.push_back(fmt::format("{}..{} items", *min_length, *max_length));
  return fmt::format("{}", fmt::join(parts, "; "));
}

namespace {
ParamSpec make(std::string key, ParamType type, ParamValue def, std::string doc) {
  ParamSpec s;
  s.key = std::move(key);
  s.type = type;
  s.default_value = std::move(def);
  s.doc = std::move(doc);
  return s;
}
}  // namespace

ParamSpec int_param(std::string key, int64_t def, std::string doc) { return make(std::move(key), ParamType::Int, def, std::move(doc)); }
ParamSpec float_param(std::string key, double def, std::string doc) { return make(std::move(key), ParamType::Float, def, std::move(doc)); }
ParamSpec bool_param(std::string key, bool def, std::string doc) { return make(std::move(key), ParamType::Bool, def, std::move(doc)); }
ParamSpec string_param(std::string key, std::string def, std::string doc) { return make(std::move(key), ParamType::String, std::move(def), std::move(doc)); }
ParamSpec path_param(std::string key, std::string def, std::string doc) { return make(std::move(key), ParamType::Path, std::move(def), std::move(doc)); }
ParamSpec int_list_param(std::string key, std::vector<int64_t> def, std::string doc) { return make(std::move(key), ParamType::IntList, std::move(def), std::move(doc)); }
ParamSpec float_list_param(std::string key, std::vector<double> def, std::string doc) { return make(std::move(key), ParamType::FloatList, std::move(def), std::move(doc)); }
ParamSpec string_list_param(std::string key, std::vector<std::string> def, std::string doc) { return make(std::move(key), ParamType::StringList, std::move(def), std::move(doc)); }

const ParamValue& Params::at(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end())
    throw internal_error(fmt::format("{} read parameter '{}' that its schema does not declare", owner_, key));
  return it->second;
}

template <typename T>
static const T& get_as(const ParamValue& v, const std::string& owner, const std::string& key, const char* want) {
  if (const T* p = std::get_if<T>(&v)) return *p;
  throw internal_error(fmt::format("{} read parameter '{}' as {} but it holds {}", owner, key, want, format_param_value(v)));
}

int64_t Params::integer(const std::string& key) const { return get_as<int64_t>(at(key), owner_, key, "int"); }
double Params::real(const std::string& key) const {
  const ParamValue& v = at(key);
  if (const int64_t* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  return get_as<double>(v, owner_, key, "float");
}
bool Params::boolean(const std::string& key) const { return get_as<bool>(at(key), owner_, key, "bool"); }
const std::string& Params::str(const std::string& key) const { return get_as<std::string>(at(key), owner_, key, "string"); }
const std::vector<int64_t>& Params::integers(const std::string& key) const {
  return get_as<std::vector<int64_t>>(at(key), owner_, key, "int list");
}
std::vector<double> Params::reals(const std::string& key) const { return get_as<std::vector<double>>(at(key), owner_, key, "float list"); }
const std::vector<std::string>& Params::strs(const std::string& key) const {
  return get_as<std::vector<std::string>>(at(key), owner_, key, "string list");
}

Params default_params(const std::string& owner, const std::vector<ParamSpec>& specs) {
  std::map<std::string, ParamValue> values;
  for (const auto& s : specs) values[s.key] = s.default_value;
  return Params(owner, std::move(values));
}

}  // namespace asg
