// asg compare: what differs between runs, and only that.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "asg/error.h"
#include "asg/registry.h"
#include "asg/run_query.h"

namespace asg {

namespace {

// Keyed values of each run; a key a run lacks is absent from its map.
using KeyedValues = std::vector<std::map<std::string, std::string>>;

struct Difference {
  std::string key;
  std::vector<std::optional<std::string>> values;  // per run; nullopt = absent
};

std::vector<Difference> differences(const KeyedValues& per_run) {
  std::set<std::string> keys;
  for (const auto& m : per_run)
    for (const auto& [k, v] : m) keys.insert(k);
  std::vector<Difference> out;
  for (const auto& key : keys) {
    Difference d{key, {}};
    for (const auto& m : per_run) {
      auto it = m.find(key);
      d.values.push_back(it == m.end() ? std::nullopt : std::optional<std::string>(it->second));
    }
    if (std::any_of(d.values.begin(), d.values.end(), [&](const auto& v) { return v != d.values.front(); })) out.push_back(std::move(d));
  }
  return out;
}

void flatten_json(const nlohmann::json& value, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) flatten_json(child, prefix.empty() ? key : prefix + "." + key, out);
  } else if (!prefix.empty()) {
    out[prefix] = value.is_string() ? value.get<std::string>() : value.dump();
  }
}

std::map<std::string, std::string> flat_json(const std::string& text) {
  std::map<std::string, std::string> out;
  const auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_object()) flatten_json(parsed, "", out);
  return out;
}

std::string md_cell(const std::optional<std::string>& v) {
  if (!v) return "(absent)";
  std::string out;
  for (char c : *v) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out.empty() ? "\"\"" : out;
}

std::string format_value(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : "n/a"; }

}  // namespace

std::string render_comparison(const Registry& registry, const std::vector<RunRecord>& runs, LeaderboardFormat format) {
  if (runs.size() < 2) throw config_error("asg compare needs two runs or more");
  if (format != LeaderboardFormat::Markdown && format != LeaderboardFormat::Json)
    throw config_error("asg compare writes md or json");

  KeyedValues config, plugins, libraries, host, hashes;
  std::vector<std::map<std::string, ResultValue>> results;
  std::vector<std::string> result_order;
  for (const auto& run : runs) {
    config.push_back(flat_config(run.config_text));
    std::map<std::string, std::string> p, l;
    for (const auto& use : registry.plugins(run.id)) {
      p[use.slot] = fmt::format("{} {}", use.name, use.version);
      l[use.slot] = use.library_sha256;
    }
    plugins.push_back(std::move(p));
    libraries.push_back(std::move(l));
    host.push_back(flat_json(run.host_json));
    hashes.push_back({{"config", run.config_hash}, {"method", run.method_hash}, {"protocol", run.protocol_hash},
                      {"commit", run.git_commit + (run.git_dirty ? "+dirty" : "")}});
    std::map<std::string, ResultValue> r;
    for (const auto& v : registry.results(run.id)) {
      r[v.key] = v;
      if (std::find(result_order.begin(), result_order.end(), v.key) == result_order.end()) result_order.push_back(v.key);
    }
    results.push_back(std::move(r));
  }
  const auto config_diff = differences(config), plugin_diff = differences(plugins), library_diff = differences(libraries),
             host_diff = differences(host), hash_diff = differences(hashes);

  // Results: every key whose value differs between runs, with each value's delta from the first run.
  struct ResultRow {
    std::string key;
    bool higher_is_better = true;
    std::vector<std::optional<double>> values;
  };
  std::vector<ResultRow> result_rows;
  size_t equal_results = 0;
  for (const auto& key : result_order) {
    ResultRow row{key, true, {}};
    for (const auto& r : results) {
      auto it = r.find(key);
      if (it == r.end()) {
        row.values.push_back(std::nullopt);
        continue;
      }
      row.higher_is_better = it->second.higher_is_better;
      row.values.push_back(it->second.value);
    }
    const bool same = std::all_of(row.values.begin(), row.values.end(), [&](const auto& v) {
      const auto& f = row.values.front();
      if (!v || !f) return !v && !f;
      return *v == *f || (std::isnan(*v) && std::isnan(*f));
    });
    if (same) ++equal_results;
    else result_rows.push_back(std::move(row));
  }

  if (format == LeaderboardFormat::Json) {
    auto diff_json = [](const std::vector<Difference>& diffs) {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& d : diffs) {
        nlohmann::json values = nlohmann::json::array();
        for (const auto& v : d.values) values.push_back(v ? nlohmann::json(*v) : nlohmann::json());
        j[d.key] = values;
      }
      return j;
    };
    nlohmann::json j;
    for (const auto& run : runs)
      j["runs"].push_back({{"id", run.id}, {"name", run.name}, {"status", status_name(run.status)}, {"seed", run.seed}});
    j["config"] = diff_json(config_diff);
    j["plugins"] = diff_json(plugin_diff);
    j["plugin_libraries"] = diff_json(library_diff);
    j["host"] = diff_json(host_diff);
    j["hashes"] = diff_json(hash_diff);
    j["results"] = nlohmann::json::object();
    for (const auto& row : result_rows) {
      nlohmann::json values = nlohmann::json::array(), deltas = nlohmann::json::array();
      for (const auto& v : row.values) {
        values.push_back(v && std::isfinite(*v) ? nlohmann::json(*v) : nlohmann::json());
        deltas.push_back(v && row.values.front() && std::isfinite(*v) && std::isfinite(*row.values.front())
                             ? nlohmann::json(*v - *row.values.front())
                             : nlohmann::json());
      }
      j["results"][row.key] = {{"higher_is_better", row.higher_is_better}, {"values", values}, {"delta_from_first", deltas}};
    }
    j["equal_results"] = equal_results;
    return j.dump(2) + "\n";
  }

  std::string out = "## Runs\n\n| | run | name | status | seed |\n|---|---|---|---|---:|\n";
  for (size_t i = 0; i < runs.size(); ++i)
    out += fmt::format("| {} | {} | {} | {} | {} |\n", static_cast<char>('A' + std::min<size_t>(i, 25)), runs[i].id, md_cell(runs[i].name),
                       status_name(runs[i].status), runs[i].seed);
  std::vector<std::string> letters;
  for (size_t i = 0; i < runs.size(); ++i) letters.push_back(std::string(1, static_cast<char>('A' + std::min<size_t>(i, 25))));
  auto table = [&](const std::string& title, const std::string& what, const std::vector<Difference>& diffs) {
    if (diffs.empty()) {
      out += fmt::format("\n## {}: no difference\n", title);
      return;
    }
    out += fmt::format("\n## {} ({} {}{} differ{})\n\n| {} | {} |\n|---|{}\n", title, diffs.size(), what, diffs.size() == 1 ? "" : "s",
                       diffs.size() == 1 ? "s" : "", what, fmt::join(letters, " | "), [&] {
                         std::string sep;
                         for (size_t i = 0; i < runs.size(); ++i) sep += "---|";
                         return sep;
                       }());
    for (const auto& d : diffs) {
      std::vector<std::string> cells;
      for (const auto& v : d.values) cells.push_back(md_cell(v));
      out += fmt::format("| {} | {} |\n", md_cell(d.key), fmt::join(cells, " | "));
    }
  };
  table("Config", "key", config_diff);
  table("Plugins", "slot", plugin_diff);
  table("Plugin libraries (sha256)", "slot", library_diff);
  table("Host and libraries", "key", host_diff);
  table("Hashes", "hash", hash_diff);
  if (result_rows.empty()) {
    out += fmt::format("\n## Results: no difference ({} equal)\n", equal_results);
    return out;
  }
  out += fmt::format("\n## Results ({} differ, {} equal; Δ against A)\n\n| metric | {} |\n|---|{}\n", result_rows.size(), equal_results,
                     fmt::join(letters, " | "), [&] {
                       std::string sep;
                       for (size_t i = 0; i < runs.size(); ++i) sep += "---:|";
                       return sep;
                     }());
  for (const auto& row : result_rows) {
    std::vector<std::string> cells;
    for (size_t i = 0; i < row.values.size(); ++i) {
      const auto& v = row.values[i];
      if (!v) {
        cells.push_back("(absent)");
        continue;
      }
      std::string cell = format_value(*v);
      if (i > 0 && row.values.front() && std::isfinite(*v) && std::isfinite(*row.values.front())) {
        const double delta = *v - *row.values.front();
        const bool better = row.higher_is_better ? delta > 0 : delta < 0;
        cell += fmt::format(" (Δ {:+.4g}{})", delta, delta == 0 ? "" : better ? ", better" : ", worse");
      }
      cells.push_back(cell);
    }
    out += fmt::format("| {} {} | {} |\n", row.key, row.higher_is_better ? "↑" : "↓", fmt::join(cells, " | "));
  }
  return out;
}

}  // namespace asg
