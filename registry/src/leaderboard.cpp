#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "asg/error.h"
#include "asg/registry.h"

namespace asg {

namespace {

struct Row {
  RunRecord run;
  std::map<std::string, ResultValue> results;
};

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

}  // namespace

std::string render_leaderboard(const Registry& registry, const std::string& benchmark, LeaderboardFormat format) {
  std::vector<Row> rows;
  for (auto& run : registry.list_runs(benchmark, RunStatus::Finished)) {
    Row row{run, {}};
    for (auto& r : registry.results(run.id)) row.results[r.key] = r;
    rows.push_back(std::move(row));
  }
  if (rows.empty()) {
    std::set<std::string> names;
    for (const auto& r : registry.list_runs("", RunStatus::Finished))
      if (!r.benchmark.empty()) names.insert(r.benchmark);
    std::vector<std::string> known(names.begin(), names.end());
    throw config_error(fmt::format("{}: no finished runs of benchmark '{}' (benchmarks with finished runs: {})",
                                   registry.path().string(), benchmark,
                                   known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
  }

  // Columns: metric keys in the order the newest run recorded them, then keys only older runs have.
  std::vector<std::string> columns;
  for (const auto& r : registry.results(rows.front().run.id)) columns.push_back(r.key);
  for (const auto& row : rows)
    for (const auto& [key, _] : row.results)
      if (std::find(columns.begin(), columns.end(), key) == columns.end()) columns.push_back(key);

  std::string rank_by = rows.front().run.rank_by.empty() && !columns.empty() ? columns.front() : rows.front().run.rank_by;
  bool higher_better = true;
  for (const auto& row : rows)
    if (auto it = row.results.find(rank_by); it != row.results.end()) higher_better = it->second.higher_is_better;
  // Runs missing the rank metric go last; ties keep newest first.
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    auto ia = a.results.find(rank_by), ib = b.results.find(rank_by);
    bool ha = ia != a.results.end() && std::isfinite(ia->second.value);
    bool hb = ib != b.results.end() && std::isfinite(ib->second.value);
    if (ha != hb) return ha;
    if (!ha) return false;
    return higher_better ? ia->second.value > ib->second.value : ia->second.value < ib->second.value;
  });

  std::vector<std::string> header = {"rank", "run", "name"};
  for (const auto& c : columns) {
    bool hib = true;
    for (const auto& row : rows)
      if (auto it = row.results.find(c); it != row.results.end()) hib = it->second.higher_is_better;
    header.push_back(format == LeaderboardFormat::Markdown ? fmt::format("{} {}", c, hib ? "↑" : "↓") : c);
  }
  for (const char* h : {"experiment", "config", "commit"}) header.push_back(h);

  std::vector<std::vector<std::string>> table;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    std::vector<std::string> cells = {std::to_string(i + 1), row.run.id, row.run.name};
    for (const auto& c : columns) {
      auto it = row.results.find(c);
      cells.push_back(it == row.results.end() ? "" : format_metric(it->second.value));
    }
    cells.push_back(row.run.experiment_path);
    cells.push_back(format == LeaderboardFormat::Markdown ? row.run.config_hash.substr(0, 12) : row.run.config_hash);
    std::string commit = row.run.git_commit.empty() ? "unknown" : row.run.git_commit.substr(0, format == LeaderboardFormat::Markdown ? 10 : 40);
    if (row.run.git_dirty) commit += "+dirty";
    cells.push_back(commit);
    table.push_back(std::move(cells));
  }

  std::string out;
  if (format == LeaderboardFormat::Csv) {
    std::vector<std::string> h;
    for (const auto& c : header) h.push_back(csv_field(c));
    out += fmt::format("{}\n", fmt::join(h, ","));
    for (const auto& cells : table) {
      std::vector<std::string> f;
      for (const auto& c : cells) f.push_back(csv_field(c));
      out += fmt::format("{}\n", fmt::join(f, ","));
    }
    return out;
  }
  out += fmt::format("## Leaderboard: {} (ranked by {}, {} is better; {} finished run{})\n\n", benchmark, rank_by,
                     higher_better ? "higher" : "lower", rows.size(), rows.size() == 1 ? "" : "s");
  out += fmt::format("| {} |\n", fmt::join(header, " | "));
  std::vector<std::string> sep;
  for (size_t i = 0; i < header.size(); ++i) sep.push_back(i >= 3 && i < 3 + columns.size() ? "---:" : "---");
  out += fmt::format("| {} |\n", fmt::join(sep, " | "));
  for (const auto& cells : table) out += fmt::format("| {} |\n", fmt::join(cells, " | "));
  return out;
}

}  // namespace asg
