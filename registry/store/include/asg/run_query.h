// Selecting runs by what they are: the keys of their resolved config, the plugins they used, their status.
// What `asg leaderboard --where/--group-by`, `asg runs list --where` and `asg compare` share.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "asg/registry.h"

namespace asg {

// A run's resolved config (the TOML it recorded) as dotted keys: "temporal.plugin" -> "sti",
// "backbone.channels" -> "[ 24, 48 ]", "metrics.0.plugin" -> "caption_accuracy". Strings unquoted; every other
// value as TOML writes it. A config that is not TOML (a row written by hand) gives no keys.
std::map<std::string, std::string> flat_config(const std::string& config_text);

// sha256 of the flat config without runtime.seed, name and description: equal for the seeds of one config (and
// for copies of it under other names). "" for a config without keys. The registry stores it with every run (schema
// 5), so how flat_config writes a value is part of it: changing that needs a migration that recomputes the hashes.
std::string seedless_config_hash(const std::string& config_text);

// One --where term: KEY=VALUE or KEY!=VALUE. KEY is a dotted config key, or one of the run's own fields
// (status, name, benchmark, seed, role, commit), or `plugin`, which matches when any slot uses that plugin.
// Numbers compare as numbers (1e-3 = 0.001), everything else as text.
struct RunFilter {
  std::string key;
  std::string value;
  bool negated = false;
  std::string text;  // as given, for messages
};
// asg::Error(Config) naming the term and the valid forms.
RunFilter parse_run_filter(const std::string& text);
std::vector<RunFilter> parse_run_filters(const std::vector<std::string>& texts);

// The run fields a filter can name besides config keys.
const std::vector<std::string>& run_field_keys();

// The value of `key` for a run: a run field or a key of its resolved config; found = false when absent.
struct KeyValue {
  bool found = false;
  std::string value;
};

// Matches runs against filters (all must hold). Reads each run's plugins once, when a filter needs them, and parses
// a config once per seedless hash: runs that differ only by seed (and name, description) share every other key, so
// --where over 100k runs of 25k configs parses 25k configs.
class RunSelector {
 public:
  RunSelector(const Registry& registry, std::vector<RunFilter> filters);
  bool empty() const { return filters_.empty(); }
  bool matches(const RunRecord& run) const;
  KeyValue value_of(const RunRecord& run, const std::string& key) const;
  // Refuses (asg::Error(Config)) a filter whose key is neither a run field nor a config key of any of `runs`,
  // naming the key, the closest known ones and where the keys come from.
  void check_keys(const std::vector<RunRecord>& runs) const;
  void check_keys(size_t count, const std::function<const RunRecord&(size_t)>& run_at) const;  // without copying runs
  std::string describe() const;  // "temporal.plugin=sti, status!=FAILED"

 private:
  // The run's flat config without the keys that differ between seeds of one config (runtime.seed, name,
  // description), shared by the runs of its seedless hash; read from the registry when `run` was listed without its
  // config text.
  const std::map<std::string, std::string>& shared_config_of(const RunRecord& run) const;
  // The run's own flat config, every key (for the keys a seedless hash leaves out).
  const std::map<std::string, std::string>& own_config_of(const RunRecord& run) const;
  std::string config_text_of(const RunRecord& run) const;
  const Registry& registry_;
  std::vector<RunFilter> filters_;
  mutable std::unordered_map<std::string, std::map<std::string, std::string>> shared_configs_, own_configs_;
  mutable std::set<std::string> seed_varying_keys_seen_;  // of those left out of shared configs
  mutable std::unordered_map<std::string, std::vector<PluginUse>> plugins_;
};

// The value of `key` for a run whose flat config is `config`.
KeyValue run_key_value(const RunRecord& run, const std::map<std::string, std::string>& config, const std::string& key);

}  // namespace asg
