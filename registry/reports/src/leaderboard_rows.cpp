// A benchmark's finished rows, their columns, tables and protocol groups.
#include "leaderboard_rows.h"

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_set>

#include "asg/error.h"

namespace asg::reports {

namespace {

Row make_row(RunRecord run, std::vector<ResultValue> values, int64_t result_set) { return Row{std::move(run), std::move(values), result_set}; }

}  // namespace

std::string format_metric(double v) {
  if (!std::isfinite(v)) return "n/a";
  if (std::fabs(v) >= 1000) return fmt::format("{:.1f}", v);
  return fmt::format("{:.4f}", v);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// The metric columns of a set of runs: keys in the order the newest run recorded them, then keys only
// older runs have; and for each whether higher is better.
std::vector<std::pair<std::string, bool>> metric_columns(const std::vector<Row>& rows) {
  std::vector<std::pair<std::string, bool>> columns;
  std::unordered_set<std::string> seen;
  auto add = [&](const ResultValue& v) {
    if (seen.insert(v.key).second) columns.emplace_back(v.key, v.higher_is_better);
  };
  for (const auto& v : rows.front().values) add(v);
  // Keys only older rows have: row by row, newest first, each row's new keys in sorted order. A row with the keys of
  // the row before it (nearly every row) brings nothing new and is passed over without a lookup.
  const Row* previous = nullptr;
  auto same_keys = [](const Row& a, const Row& b) {
    return a.values.size() == b.values.size() &&
           std::equal(a.values.begin(), a.values.end(), b.values.begin(), [](const ResultValue& x, const ResultValue& y) { return x.key == y.key; });
  };
  for (const auto& row : rows) {
    const bool repeat = previous && same_keys(*previous, row);
    previous = &row;
    if (repeat) continue;
    std::vector<const ResultValue*> fresh;
    for (const auto& v : row.values)
      if (!seen.count(v.key)) fresh.push_back(&v);
    if (fresh.empty()) continue;
    std::sort(fresh.begin(), fresh.end(), [](const ResultValue* a, const ResultValue* b) { return a->key < b->key; });
    for (const ResultValue* v : fresh) add(*v);
  }
  return columns;
}

// Newest first: the benchmark's finished runs, and the finished result sets that `asg eval` added under the
// benchmark to finished runs (the newest set per run and protocol; none where the run's own results are already
// under that protocol). A set counts as new as its evaluation.
// Runs are read with their results packed beside them and without their config and protocol texts, in one query, so
// that a benchmark with 100k runs renders in under a second; what needs a config (--where on config keys) reads it
// then, and each protocol's JSON is read once (group_by_protocol).
std::vector<Row> finished_rows(const Registry& registry, const std::string& benchmark) {
  std::vector<Row> rows;
  std::set<std::pair<std::string, std::string>> measured;  // (run, protocol)
  // Experiment runs only: a sweep only parents its points; a reproduction is judged, never ranked beside its run.
  auto ranked = registry.ranked_runs(benchmark);
  rows.reserve(ranked.size());
  for (auto& [run, results] : ranked) {
    measured.insert({run.id, run.protocol_hash});
    rows.push_back(make_row(std::move(run), std::move(results), 0));
  }
  const size_t runs_count = rows.size();
  for (const auto& set : registry.result_sets("", benchmark)) {
    if (set.status != RunStatus::Finished || (!benchmark.empty() && set.benchmark != benchmark)) continue;
    if (!measured.insert({set.run_id, set.protocol_hash}).second) continue;
    auto run = registry.find_run(set.run_id);
    if (!run || run->status != RunStatus::Finished || run->deleted_ms || run->role != RunRole::Run) continue;
    run->benchmark = set.benchmark;
    run->rank_by = set.rank_by;
    run->protocol_hash = set.protocol_hash;
    run->protocol_json = set.protocol_json;
    run->created_ms = set.created_ms;
    rows.push_back(make_row(std::move(*run), registry.result_set_values(set.id), set.id));
  }
  // Runs come newest first from the registry; only result sets added behind them need a merge into place.
  if (rows.size() > runs_count)
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.run.created_ms > b.run.created_ms; });
  return rows;
}

[[noreturn]] void throw_no_runs(const Registry& registry, const std::string& benchmark) {
  std::set<std::string> names;
  for (const auto& r : registry.list_runs("", RunStatus::Finished))
    if (!r.benchmark.empty()) names.insert(r.benchmark);
  for (const auto& set : registry.result_sets())
    if (set.status == RunStatus::Finished) names.insert(set.benchmark);
  std::vector<std::string> known(names.begin(), names.end());
  throw config_error(fmt::format("{}: no finished runs of benchmark '{}' (benchmarks with finished runs: {})",
                                 registry.path().string(), benchmark,
                                 known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
}


std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& table,
                         size_t first_numeric, size_t numeric_count, LeaderboardFormat format, const std::string& title) {
  std::string out;
  TableWriter writer(out, format);
  writer.header(header, first_numeric, numeric_count, title);
  for (const auto& cells : table) writer.row(cells);
  return out;
}


// ---- protocols -------------------------------------------------------------------------------------
// Numbers measured under different protocols (another sample count, another metric version) are not
// comparable, so the leaderboard ranks each protocol on its own. The protocol hash decides the grouping;
// the protocol JSON only explains it.

std::string short_hash(const std::string& hash) { return hash.substr(0, 12); }


// Groups rows (newest first) by protocol. The first group is the protocol of the newest run that recorded
// one: the protocol that the benchmark is measured under now. Other recorded protocols follow, newest
// first; runs without a protocol come last (or alone, in a registry that has only those).
std::vector<ProtocolGroup> group_by_protocol(const Registry& registry, const std::string& benchmark, std::vector<Row> rows) {
  std::vector<ProtocolGroup> groups;
  if (!rows.empty() && std::all_of(rows.begin(), rows.end(), [&](const Row& r) { return r.run.protocol_hash == rows.front().run.protocol_hash; })) {
    // One protocol, as in nearly every registry: the rows move as one block.
    groups.push_back(ProtocolGroup{rows.front().run.protocol_hash, "", std::move(rows)});
    for (const auto& row : groups.front().rows)
      if (!row.run.protocol_json.empty()) {
        groups.front().json = row.run.protocol_json;
        break;
      }
    rows.clear();
  }
  for (auto& row : rows) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const ProtocolGroup& g) { return g.hash == row.run.protocol_hash; });
    if (it == groups.end()) it = groups.insert(groups.end(), ProtocolGroup{row.run.protocol_hash, "", {}});
    if (it->json.empty()) it->json = row.run.protocol_json;  // a result set's row carries its protocol
    it->rows.push_back(std::move(row));
  }
  for (auto& g : groups)
    if (g.json.empty() && !g.hash.empty()) g.json = registry.protocol_json_of(benchmark, g.hash);
  std::stable_partition(groups.begin(), groups.end(), [](const ProtocolGroup& g) { return !g.hash.empty(); });
  return groups;
}

// {"eval": {"num_samples": 32}} -> {"eval.num_samples": "32"}; leaves (arrays included) as compact JSON.
namespace {

// {"eval": {"num_samples": 32}} -> {"eval.num_samples": "32"}; leaves (arrays included) as compact JSON, strings
// quoted or as they are.
void flatten(const nlohmann::json& value, const std::string& prefix, bool strings_quoted, std::map<std::string, std::string>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) flatten(child, prefix.empty() ? key : prefix + "." + key, strings_quoted, out);
  } else if (!prefix.empty()) {
    out[prefix] = value.is_string() && !strings_quoted ? value.get<std::string>() : value.dump();
  }
}

}  // namespace

std::map<std::string, std::string> flat_json(const std::string& json, bool strings_quoted) {
  std::map<std::string, std::string> out;
  // create_run accepts only JSON objects; a row written some other way is shown as having no fields.
  const auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) flatten(parsed, "", strings_quoted, out);
  return out;
}

// "eval.num_samples = 64 (above: 32), metrics.fid.version = \"3\" (above: \"2\")": the fields of `other`
// that differ from `ranked`, by dotted key. At most kShown fields are named.
std::string protocol_difference(const ProtocolGroup& ranked, const ProtocolGroup& other) {
  if (ranked.json.empty() || other.json.empty()) return "fields not recorded";
  const auto above = flat_json(ranked.json, true), here = flat_json(other.json, true);
  std::set<std::string> keys;
  for (const auto& [key, value] : above) keys.insert(key);
  for (const auto& [key, value] : here) keys.insert(key);
  std::vector<std::string> fields;
  for (const auto& key : keys) {
    auto a = above.find(key), h = here.find(key);
    if (a != above.end() && h != here.end() && a->second == h->second) continue;
    if (h == here.end()) fields.push_back(fmt::format("{} absent (above: {})", key, a->second));
    else fields.push_back(fmt::format("{} = {} (above: {})", key, h->second, a == above.end() ? "absent" : a->second));
  }
  if (fields.empty()) return "no field (same protocol JSON under another hash)";
  constexpr size_t kShown = 8;
  if (fields.size() <= kShown) return fmt::format("{}", fmt::join(fields, ", "));
  const size_t more = fields.size() - kShown;
  fields.resize(kShown);
  return fmt::format("{}, and {} more field{}", fmt::join(fields, ", "), more, more == 1 ? "" : "s");
}

}  // namespace asg::reports
