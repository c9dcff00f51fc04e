// A TOML table's values checked against parameter specs (unknown keys, types, ranges, choices, lengths, files
// that must exist), and parameters written back as TOML. Internal to the runtime.
#pragma once

#include <toml++/toml.h>

#include <set>
#include <string>
#include <vector>

#include "asg/params.h"
#include "composition.h"

namespace asg::config {

// Validates `table` against `specs`: every key known, every value of its type and within its constraints, every
// required key present, defaults filled in; paths resolved against the file that set them. `skip` lists keys
// handled elsewhere (e.g. "plugin"). asg::Error(Config) naming the key's file:line:col and what would be valid.
Params validate_table(const toml::table& table, const std::vector<ParamSpec>& specs, const std::string& section,
                      const std::string& owner, const std::string& table_where, const std::string& dotted_prefix,
                      const Origins& origins, const std::set<std::string>& skip = {});

toml::table params_table(const Params& p);
std::string to_toml_text(const toml::table& t);

}  // namespace asg::config
