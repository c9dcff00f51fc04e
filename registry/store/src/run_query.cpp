#include "asg/run_query.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <sstream>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/names.h"

namespace asg {

namespace {

void flatten(const toml::node& node, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (const toml::table* table = node.as_table()) {
    for (auto&& [key, child] : *table) flatten(child, prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str()), out);
    return;
  }
  if (const toml::array* array = node.as_array(); array && array->is_array_of_tables()) {
    for (size_t i = 0; i < array->size(); ++i) flatten(*array->get(i), fmt::format("{}.{}", prefix, i), out);
    return;
  }
  if (const auto* str = node.as_string()) {
    out[prefix] = str->get();
    return;
  }
  if (const auto* f = node.as_floating_point()) {
    // The shortest text that reads back to the same double (0.0005, not toml++'s 0.00050000000000000001), still a float.
    std::string text = fmt::format("{}", f->get());
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
    out[prefix] = text;
    return;
  }
  std::ostringstream text;
  node.visit([&](auto&& leaf) { text << leaf; });
  out[prefix] = text.str();
}

std::optional<double> as_number(const std::string& text) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return v;
}

bool values_equal(const std::string& a, const std::string& b) {
  if (a == b) return true;
  auto x = as_number(a), y = as_number(b);
  return x && y && *x == *y;
}

}  // namespace

std::map<std::string, std::string> flat_config(const std::string& config_text) {
  std::map<std::string, std::string> out;
  try {
    const toml::table root = toml::parse(config_text);
    flatten(root, "", out);
  } catch (const toml::parse_error&) {
    // A row not written by asg run (or by an asg from before configs were TOML): no keys to select on.
  }
  return out;
}

std::string seedless_config_hash(const std::string& config_text) {
  auto flat = flat_config(config_text);
  if (flat.empty()) return "";
  for (const char* key : {"runtime.seed", "name", "description"}) flat.erase(key);
  std::string text;
  for (const auto& [key, value] : flat) text += key + "=" + value + "\n";
  return sha256_hex(text);
}

const std::vector<std::string>& run_field_keys() {
  static const std::vector<std::string> keys = {"status", "name", "benchmark", "seed", "role", "commit", "plugin"};
  return keys;
}

RunFilter parse_run_filter(const std::string& text) {
  RunFilter f;
  f.text = text;
  size_t op = text.find("!=");
  size_t value_at = op + 2;
  if (op == std::string::npos) {
    op = text.find('=');
    value_at = op + 1;
  } else {
    f.negated = true;
  }
  if (op == std::string::npos || op == 0)
    throw config_error(fmt::format("--where '{}': expected KEY=VALUE or KEY!=VALUE, where KEY is a config key (e.g. "
                                   "temporal.plugin) or one of {}",
                                   text, join(run_field_keys(), ", ")));
  f.key = text.substr(0, op);
  f.value = text.substr(value_at);
  return f;
}

std::vector<RunFilter> parse_run_filters(const std::vector<std::string>& texts) {
  std::vector<RunFilter> out;
  for (const auto& t : texts) out.push_back(parse_run_filter(t));
  return out;
}

KeyValue run_key_value(const RunRecord& run, const std::map<std::string, std::string>& config, const std::string& key) {
  if (key == "status") return {true, status_name(run.status)};
  if (key == "name") return {true, run.name};
  if (key == "benchmark") return {true, run.benchmark};
  if (key == "seed") return {true, std::to_string(run.seed)};
  if (key == "role") return {true, run_role_name(run.role)};
  if (key == "commit") return {true, run.git_commit};
  auto it = config.find(key);
  if (it == config.end()) return {};
  return {true, it->second};
}

RunSelector::RunSelector(const Registry& registry, std::vector<RunFilter> filters)
    : registry_(registry), filters_(std::move(filters)) {}

namespace {

// The config keys in which runs of one seedless hash may differ (seedless_config_hash leaves them out).
constexpr const char* kSeedVaryingKeys[] = {"runtime.seed", "name", "description"};

bool seed_varying(const std::string& key) {
  return std::find(std::begin(kSeedVaryingKeys), std::end(kSeedVaryingKeys), key) != std::end(kSeedVaryingKeys);
}

}  // namespace

KeyValue RunSelector::value_of(const RunRecord& run, const std::string& key) const {
  const auto& fields = run_field_keys();
  if (std::find(fields.begin(), fields.end(), key) != fields.end()) return run_key_value(run, {}, key);
  return run_key_value(run, seed_varying(key) ? own_config_of(run) : shared_config_of(run), key);
}

bool RunSelector::matches(const RunRecord& run) const {
  for (const auto& f : filters_) {
    bool hit = false;
    if (f.key == "plugin") {
      auto it = plugins_.find(run.id);
      if (it == plugins_.end()) it = plugins_.emplace(run.id, registry_.plugins(run.id)).first;
      for (const auto& p : it->second) hit |= p.name == f.value;
    } else if (f.key == "commit") {
      // A commit matches by prefix, as git abbreviates it.
      hit = !f.value.empty() && run.git_commit.rfind(f.value, 0) == 0;
    } else {
      const KeyValue v = value_of(run, f.key);
      hit = v.found && values_equal(v.value, f.value);
    }
    if (hit == f.negated) return false;
  }
  return true;
}

void RunSelector::check_keys(const std::vector<RunRecord>& runs) const {
  check_keys(runs.size(), [&](size_t i) -> const RunRecord& { return runs[i]; });
}

void RunSelector::check_keys(size_t count, const std::function<const RunRecord&(size_t)>& run_at) const {
  const auto& fields = run_field_keys();
  std::vector<const RunFilter*> config_filters;
  for (const auto& f : filters_)
    if (std::find(fields.begin(), fields.end(), f.key) == fields.end()) config_filters.push_back(&f);
  // Configs are read until every key asked for has been seen: a valid key is usually found in the first one.
  std::set<std::string> known;
  auto all_known = [&] {
    return std::all_of(config_filters.begin(), config_filters.end(), [&](const RunFilter* f) { return known.count(f->key) != 0; });
  };
  for (size_t i = 0; i < count && !all_known(); ++i) {
    for (const auto& [key, value] : shared_config_of(run_at(i))) known.insert(key);
    known.insert(seed_varying_keys_seen_.begin(), seed_varying_keys_seen_.end());
  }
  for (const RunFilter* f : config_filters) {
    if (known.count(f->key)) continue;
    std::vector<std::string> candidates(known.begin(), known.end());
    candidates.insert(candidates.end(), fields.begin(), fields.end());
    throw config_error(fmt::format("--where '{}': no run here has a config key '{}' (keys are dotted TOML keys of the "
                                   "resolved config, e.g. temporal.plugin or train.lr, or one of {}).{}",
                                   f->text, f->key, join(fields, ", "), did_you_mean(f->key, candidates)));
  }
}

std::string RunSelector::config_text_of(const RunRecord& run) const {
  // Listings of many runs leave the config text out; read it for the runs a filter looks into.
  return run.config_text.empty() ? registry_.config_text(run.id) : run.config_text;
}

const std::map<std::string, std::string>& RunSelector::shared_config_of(const RunRecord& run) const {
  const std::string cache_key = run.seedless_hash.empty() ? "run:" + run.id : run.seedless_hash;
  auto it = shared_configs_.find(cache_key);
  if (it != shared_configs_.end()) return it->second;
  auto flat = flat_config(config_text_of(run));
  for (const char* key : kSeedVaryingKeys)
    if (flat.erase(key)) seed_varying_keys_seen_.insert(key);
  return shared_configs_.emplace(cache_key, std::move(flat)).first->second;
}

const std::map<std::string, std::string>& RunSelector::own_config_of(const RunRecord& run) const {
  auto it = own_configs_.find(run.id);
  if (it != own_configs_.end()) return it->second;
  return own_configs_.emplace(run.id, flat_config(config_text_of(run))).first->second;
}

std::string RunSelector::describe() const {
  std::vector<std::string> parts;
  for (const auto& f : filters_) parts.push_back(f.text);
  return join(parts, ", ");
}

}  // namespace asg
