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
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

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

  ParamSpec& range(std::optional<double> lo, std::optional<double> hi) { min = lo; max = hi; return *this; }
  ParamSpec& one_of(std::vector<std::string> allowed) { choices = std::move(allowed); return *this; }
  ParamSpec& length(int64_t lo, int64_t hi) { min_length = lo; max_length = hi; return *this; }
  ParamSpec& must_set() { required = true; return *this; }

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
