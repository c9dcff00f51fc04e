// asg compare: what differs between runs, and only that.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "asg/error.h"
#include "asg/leaderboard.h"
#include "asg/registry.h"
#include "asg/run_query.h"
#include "leaderboard_rows.h"

namespace asg {

using reports::flat_json;

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

// Every key whose value differs between runs, with the runs' values.
struct ResultRow {
  std::string key;
  bool higher_is_better = true;
  std::vector<std::optional<double>> values;  // per run; nullopt = absent
};

struct Comparison {
  std::vector<Difference> config, plugins, libraries, host, hashes;
  std::vector<ResultRow> results;
  size_t equal_results = 0;
};

// The results that differ between runs, in the order the runs recorded their keys; `equal` counts the others.
std::vector<ResultRow> result_differences(const std::vector<std::map<std::string, ResultValue>>& results,
                                          const std::vector<std::string>& order, size_t& equal) {
  std::vector<ResultRow> rows;
  for (const auto& key : order) {
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
    if (same) ++equal;
    else rows.push_back(std::move(row));
  }
  return rows;
}

Comparison compare_runs(const Registry& registry, const std::vector<RunRecord>& runs) {
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
    host.push_back(flat_json(run.host_json, /*strings_quoted=*/false));
    hashes.push_back({{"config", run.config_hash}, {"method", run.method_hash}, {"protocol", run.protocol_hash},
                      {"commit", run.git_commit + (run.git_dirty ? "+dirty" : "")}});
    std::map<std::string, ResultValue> r;
    for (const auto& v : registry.results(run.id)) {
      r[v.key] = v;
      if (std::find(result_order.begin(), result_order.end(), v.key) == result_order.end()) result_order.push_back(v.key);
    }
    results.push_back(std::move(r));
  }
  Comparison c{differences(config), differences(plugins), differences(libraries), differences(host), differences(hashes), {}, 0};
  c.results = result_differences(results, result_order, c.equal_results);
  return c;
}

nlohmann::json differences_json(const std::vector<Difference>& diffs) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& d : diffs) {
    nlohmann::json values = nlohmann::json::array();
    for (const auto& v : d.values) values.push_back(v ? nlohmann::json(*v) : nlohmann::json());
    j[d.key] = values;
  }
  return j;
}

std::string comparison_json(const std::vector<RunRecord>& runs, const Comparison& c) {
  nlohmann::json j;
  for (const auto& run : runs)
    j["runs"].push_back({{"id", run.id}, {"name", run.name}, {"status", status_name(run.status)}, {"seed", run.seed}});
  j["config"] = differences_json(c.config);
  j["plugins"] = differences_json(c.plugins);
  j["plugin_libraries"] = differences_json(c.libraries);
  j["host"] = differences_json(c.host);
  j["hashes"] = differences_json(c.hashes);
  j["results"] = nlohmann::json::object();
  for (const auto& row : c.results) {
    nlohmann::json values = nlohmann::json::array(), deltas = nlohmann::json::array();
    for (const auto& v : row.values) {
      values.push_back(v && std::isfinite(*v) ? nlohmann::json(*v) : nlohmann::json());
      deltas.push_back(v && row.values.front() && std::isfinite(*v) && std::isfinite(*row.values.front())
                           ? nlohmann::json(*v - *row.values.front())
                           : nlohmann::json());
    }
    j["results"][row.key] = {{"higher_is_better", row.higher_is_better}, {"values", values}, {"delta_from_first", deltas}};
  }
  j["equal_results"] = c.equal_results;
  return j.dump(2) + "\n";
}

// "| A | B |" column letters and the separator row's cells ("---|" each, or "---:|" for numbers).
std::string separator_cells(size_t runs, const char* cell) {
  std::string sep;
  for (size_t i = 0; i < runs; ++i) sep += cell;
  return sep;
}

// One "## title" table of differences, or the line saying there is none.
std::string difference_table(const std::string& title, const std::string& what, const std::vector<Difference>& diffs,
                             const std::vector<std::string>& letters) {
  if (diffs.empty()) return fmt::format("\n## {}: no difference\n", title);
  std::string out = fmt::format("\n## {} ({} {}{} differ{})\n\n| {} | {} |\n|---|{}\n", title, diffs.size(), what,
                                diffs.size() == 1 ? "" : "s", diffs.size() == 1 ? "s" : "", what, fmt::join(letters, " | "),
                                separator_cells(letters.size(), "---|"));
  for (const auto& d : diffs) {
    std::vector<std::string> cells;
    for (const auto& v : d.values) cells.push_back(md_cell(v));
    out += fmt::format("| {} | {} |\n", md_cell(d.key), fmt::join(cells, " | "));
  }
  return out;
}

// A result's value with its delta from run A, and whether that is better.
std::string result_cell(const ResultRow& row, size_t i) {
  const auto& v = row.values[i];
  if (!v) return "(absent)";
  std::string cell = format_value(*v);
  if (i > 0 && row.values.front() && std::isfinite(*v) && std::isfinite(*row.values.front())) {
    const double delta = *v - *row.values.front();
    const bool better = row.higher_is_better ? delta > 0 : delta < 0;
    cell += fmt::format(" (Δ {:+.4g}{})", delta, delta == 0 ? "" : better ? ", better" : ", worse");
  }
  return cell;
}

std::string comparison_markdown(const std::vector<RunRecord>& runs, const Comparison& c) {
  std::string out = "## Runs\n\n| | run | name | status | seed |\n|---|---|---|---|---:|\n";
  std::vector<std::string> letters;
  for (size_t i = 0; i < runs.size(); ++i) {
    letters.push_back(std::string(1, static_cast<char>('A' + std::min<size_t>(i, 25))));
    out += fmt::format("| {} | {} | {} | {} | {} |\n", letters.back(), runs[i].id, md_cell(runs[i].name), status_name(runs[i].status),
                       runs[i].seed);
  }
  out += difference_table("Config", "key", c.config, letters);
  out += difference_table("Plugins", "slot", c.plugins, letters);
  out += difference_table("Plugin libraries (sha256)", "slot", c.libraries, letters);
  out += difference_table("Host and libraries", "key", c.host, letters);
  out += difference_table("Hashes", "hash", c.hashes, letters);
  if (c.results.empty()) return out + fmt::format("\n## Results: no difference ({} equal)\n", c.equal_results);
  out += fmt::format("\n## Results ({} differ, {} equal; Δ against A)\n\n| metric | {} |\n|---|{}\n", c.results.size(),
                     c.equal_results, fmt::join(letters, " | "), separator_cells(runs.size(), "---:|"));
  for (const auto& row : c.results) {
    std::vector<std::string> cells;
    for (size_t i = 0; i < row.values.size(); ++i) cells.push_back(result_cell(row, i));
    out += fmt::format("| {} {} | {} |\n", row.key, row.higher_is_better ? "↑" : "↓", fmt::join(cells, " | "));
  }
  return out;
}

}  // namespace

std::string render_comparison(const Registry& registry, const std::vector<RunRecord>& runs, LeaderboardFormat format) {
  if (runs.size() < 2) throw config_error("asg compare needs two runs or more");
  if (format != LeaderboardFormat::Markdown && format != LeaderboardFormat::Json)
    throw config_error("asg compare writes md or json");
  const Comparison c = compare_runs(registry, runs);
  return format == LeaderboardFormat::Json ? comparison_json(runs, c) : comparison_markdown(runs, c);
}

}  // namespace asg
