// Parameter schemas and validated parameter values.
//
// Every plugin (and every core section of an experiment file: [train], [eval], ...) declares its keys as
// a list of ParamSpec. The config loader checks an experiment against these specs before anything
// heavy runs, fills in defaults, and hands the plugin a Params holding exactly the declared keys with
// values of the declared type. A plugin therefore never parses TOML and never sees an unknown key.
//
// Declaring a schema:
//   std::vector<asg::ParamSpec> params = {
//       asg::int_param("frames", 8, "frames per sticker").range(2, 64),
//       asg::string_param("schedule", "cosine", "noise schedule").one_of({"cosine", "linear"}),
//   };
// Reading it in the factory:  int64_t frames = p.integer("frames");
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "asg/error.h"

namespace asg {

enum class ParamType { Int, Float, Bool, String, IntList, FloatList, StringList, Path };

// "int", "float", ... as written in the parameter tables and error messages.
const char* param_type_name(ParamType type);

using ParamValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>,
                                std::vector<double>, std::vector<std::string>>;

// Renders a value in TOML syntax ("3", "0.5", "\"cosine\"", "[32, 64]").
std::string format_param_value(const ParamValue& value);

struct ParamSpec {
  std::string key;
  ParamType type = ParamType::Int;
  ParamValue default_value;
  std::string doc;                    // one line, shown by `asg plugins show`
  std::optional<double> min, max;     // inclusive; for lists, applied to every element
  std::vector<std::string> choices;   // allowed strings (String / StringList); empty = any
  bool required = false;              // no default: the experiment must set it
  std::optional<int64_t> min_length, max_length;  // list lengths
  // False for a key added after runs were recorded whose default keeps the earlier behaviour: at its
  // default it is left out of the method and protocol hashes, so those runs keep their hashes (and can
  // be resumed and ranked with new ones).
  bool hashed_at_default = true;

  ParamSpec& range(std::optional<double> lo, std::optional<double> hi) { min = lo; max = hi; return *this; }
  ParamSpec& one_of(std::vector<std::string> allowed) { choices = std::move(allowed); return *this; }
  ParamSpec& length(int64_t lo, int64_t hi) { min_length = lo; max_length = hi; return *this; }
  ParamSpec& must_set() { required = true; return *this; }
  ParamSpec& added_later() { hashed_at_default = false; return *this; }

  // "1 <= x <= 64", "one of: a, b", "" when unconstrained.
  std::string constraint_text() const;
};

ParamSpec int_param(std::string key, int64_t def, std::string doc);
ParamSpec float_param(std::string key, double def, std::string doc);
ParamSpec bool_param(std::string key, bool def, std::string doc);
ParamSpec string_param(std::string key, std::string def, std::string doc);
ParamSpec path_param(std::string key, std::string def, std::string doc);  // must exist if non-empty
ParamSpec int_list_param(std::string key, std::vector<int64_t> def, std::string doc);
ParamSpec float_list_param(std::string key, std::vector<double> def, std::string doc);
ParamSpec string_list_param(std::string key, std::vector<std::string> def, std::string doc);

// The names of an enum's members, listed once: the schema's allowed values, the parser and the printer
// all read this table, so a name cannot be added in one place and forgotten in another.
//
//   const asg::EnumNames<Covariance>& covariance_names() {
//     static const asg::EnumNames<Covariance> names{{Covariance::Unbiased, "unbiased"}, {Covariance::Biased, "biased"}};
//     return names;
//   }
//   asg::enum_param("covariance", Covariance::Unbiased, covariance_names(), "...")   // in the schema
//   covariance_names().parse(p.str("covariance"), "covariance")                     // in the plugin
template <typename E>
class EnumNames {
 public:
  EnumNames(std::initializer_list<std::pair<E, const char*>> entries) : entries_(entries) {}

  const char* name(E value) const {
    for (const auto& [v, n] : entries_)
      if (v == value) return n;
    throw Error(ErrorKind::Internal, "an enum value without a name");
  }
  // asg::Error(Config) naming `what` and the valid names when `name` is none of them.
  E parse(const std::string& name, const std::string& what) const {
    for (const auto& [v, n] : entries_)
      if (name == n) return v;
    std::string valid;
    for (const auto& n : names()) valid += (valid.empty() ? "" : ", ") + n;
    throw Error(ErrorKind::Config, what + " = \"" + name + "\": unknown value (valid: " + valid + ")");
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [v, n] : entries_) out.emplace_back(n);
    return out;
  }

 private:
  std::vector<std::pair<E, const char*>> entries_;
};

// A string parameter whose values are the names of an enum's members.
template <typename E>
ParamSpec enum_param(std::string key, E def, const EnumNames<E>& names, std::string doc) {
  return string_param(std::move(key), names.name(def), std::move(doc)).one_of(names.names());
}

// Validated values for one plugin instance or core section. Accessors throw asg::Error(Internal) when
// code asks for a key its schema did not declare or with the wrong type: that is a bug in the plugin,
// not a user error (user errors were caught by validation).
class Params {
 public:
  Params() = default;
  Params(std::string owner, std::map<std::string, ParamValue> values)
      : owner_(std::move(owner)), values_(std::move(values)) {}

  int64_t integer(const std::string& key) const;
  double real(const std::string& key) const;  // also accepts an int value
  bool boolean(const std::string& key) const;
  const std::string& str(const std::string& key) const;  // String and Path
  const std::vector<int64_t>& integers(const std::string& key) const;
  std::vector<double> reals(const std::string& key) const;
  const std::vector<std::string>& strs(const std::string& key) const;

  bool contains(const std::string& key) const { return values_.count(key) != 0; }
  const std::map<std::string, ParamValue>& values() const { return values_; }
  const std::string& owner() const { return owner_; }  // e.g. "backbone 'unet3d'"

 private:
  const ParamValue& at(const std::string& key) const;
  std::string owner_;
  std::map<std::string, ParamValue> values_;
};

// Builds Params from the specs' defaults only (what a plugin gets with an empty config table).
Params default_params(const std::string& owner, const std::vector<ParamSpec>& specs);

}  // namespace asg
