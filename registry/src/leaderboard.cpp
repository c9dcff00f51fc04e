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

// The metric columns of a set of runs: keys in the order the newest run recorded them, then keys only
// older runs have; and for each whether higher is better.
std::vector<std::pair<std::string, bool>> metric_columns(const Registry& registry, const std::vector<Row>& rows) {
  std::vector<std::pair<std::string, bool>> columns;
  auto add = [&](const std::string& key, bool higher) {
    for (const auto& c : columns)
      if (c.first == key) return;
    columns.emplace_back(key, higher);
  };
  for (const auto& r : registry.results(rows.front().run.id)) add(r.key, r.higher_is_better);
  for (const auto& row : rows)
    for (const auto& [key, value] : row.results) add(key, value.higher_is_better);
  return columns;
}

std::vector<Row> finished_rows(const Registry& registry, const std::string& benchmark) {
  std::vector<Row> rows;
  for (auto& run : registry.list_runs(benchmark, RunStatus::Finished)) {
    Row row{run, {}};
    for (auto& r : registry.results(run.id)) row.results[r.key] = r;
    rows.push_back(std::move(row));
  }
  return rows;
}

[[noreturn]] void throw_no_runs(const Registry& registry, const std::string& benchmark) {
  std::set<std::string> names;
  for (const auto& r : registry.list_runs("", RunStatus::Finished))
    if (!r.benchmark.empty()) names.insert(r.benchmark);
  std::vector<std::string> known(names.begin(), names.end());
  throw config_error(fmt::format("{}: no finished runs of benchmark '{}' (benchmarks with finished runs: {})",
                                 registry.path().string(), benchmark,
                                 known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", "))));
}

std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& table,
                         size_t first_numeric, size_t numeric_count, LeaderboardFormat format, const std::string& title) {
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
  out += title;
  out += fmt::format("| {} |\n", fmt::join(header, " | "));
  std::vector<std::string> sep;
  for (size_t i = 0; i < header.size(); ++i) sep.push_back(i >= first_numeric && i < first_numeric + numeric_count ? "---:" : "---");
  out += fmt::format("| {} |\n", fmt::join(sep, " | "));
  for (const auto& cells : table) out += fmt::format("| {} |\n", fmt::join(cells, " | "));
  return out;
}

}  // namespace

std::string render_group_summary(const Registry& registry, const std::string& benchmark, const std::vector<std::string>& names,
                                 LeaderboardFormat format) {
  std::vector<Row> rows = finished_rows(registry, benchmark);
  if (rows.empty()) throw_no_runs(registry, benchmark);
  struct Group {
    std::string name;
    std::vector<const Row*> runs;
  };
  std::vector<Group> groups;
  auto group_of = [&](const std::string& name) -> Group& {
    for (auto& g : groups)
      if (g.name == name) return g;
    groups.push_back(Group{name, {}});
    return groups.back();
  };
  if (!names.empty())
    for (const auto& n : names) group_of(n);
  for (const auto& row : rows) {
    if (!names.empty() && std::find(names.begin(), names.end(), row.run.name) == names.end()) continue;
    group_of(row.run.name).runs.push_back(&row);
  }
  std::vector<std::string> missing;
  for (const auto& g : groups)
    if (g.runs.empty()) missing.push_back(g.name);
  if (!missing.empty()) {
    std::set<std::string> known;
    for (const auto& row : rows) known.insert(row.run.name);
    throw config_error(fmt::format("no finished runs named {} in benchmark '{}' (run names there: {})", fmt::join(missing, ", "),
                                   benchmark, fmt::join(known, ", ")));
  }
  const auto columns = metric_columns(registry, rows);
  const std::string rank_by = rows.front().run.rank_by.empty() ? columns.front().first : rows.front().run.rank_by;

  struct Stat {
    double mean = std::nan(""), std = std::nan("");
    size_t n = 0;
  };
  auto stat = [](const std::vector<double>& v) {
    Stat s;
    s.n = v.size();
    if (v.empty()) return s;
    double sum = 0;
    for (double x : v) sum += x;
    s.mean = sum / v.size();
    if (v.size() > 1) {
      double ss = 0;
      for (double x : v) ss += (x - s.mean) * (x - s.mean);
      s.std = std::sqrt(ss / (v.size() - 1));
    }
    return s;
  };
  auto metric_stat = [&](const Group& g, const std::string& key) {
    std::vector<double> v;
    for (const Row* r : g.runs)
      if (auto it = r->results.find(key); it != r->results.end() && std::isfinite(it->second.value)) v.push_back(it->second.value);
    return stat(v);
  };
  if (names.empty()) {
    bool higher = true;
    for (const auto& c : columns)
      if (c.first == rank_by) higher = c.second;
    std::stable_sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) {
      double ma = metric_stat(a, rank_by).mean, mb = metric_stat(b, rank_by).mean;
      if (std::isnan(ma) != std::isnan(mb)) return !std::isnan(ma);
      return higher ? ma > mb : ma < mb;
    });
  }

  std::vector<std::string> header = {"name", "runs", "seeds", "wall min"};
  for (const auto& [key, higher] : columns)
    header.push_back(format == LeaderboardFormat::Markdown ? fmt::format("{} {}", key, higher ? "↑" : "↓") : key);
  std::vector<std::vector<std::string>> table;
  for (const auto& g : groups) {
    std::vector<int64_t> seeds;
    std::vector<double> minutes;
    for (const Row* r : g.runs) {
      seeds.push_back(r->run.seed);
      if (r->run.started_ms && r->run.ended_ms) minutes.push_back((*r->run.ended_ms - *r->run.started_ms) / 60000.0);
    }
    std::sort(seeds.begin(), seeds.end());
    std::vector<std::string> cells = {g.name, std::to_string(g.runs.size()), fmt::format("{}", fmt::join(seeds, " "))};
    Stat wall = stat(minutes);
    cells.push_back(wall.n ? fmt::format("{:.1f}", wall.mean) : "");
    for (const auto& [key, higher] : columns) {
      Stat s = metric_stat(g, key);
      if (s.n == 0) cells.push_back("");
      else if (format == LeaderboardFormat::Csv) cells.push_back(s.n > 1 ? fmt::format("{:.6g} ± {:.6g}", s.mean, s.std) : fmt::format("{:.6g}", s.mean));
      else cells.push_back(s.n > 1 ? fmt::format("{} ± {}", format_metric(s.mean), format_metric(s.std)) : format_metric(s.mean));
    }
    table.push_back(std::move(cells));
  }
  std::string title = fmt::format("## Summary: {} ({} groups; mean ± sample std over runs; ordered by {})\n\n", benchmark,
                                  groups.size(), names.empty() ? rank_by : std::string("the order asked for"));
  return render_table(header, table, 4, columns.size(), format, title);
}

std::string render_leaderboard(const Registry& registry, const std::string& benchmark, LeaderboardFormat format) {
  std::vector<Row> rows = finished_rows(registry, benchmark);
  if (rows.empty()) throw_no_runs(registry, benchmark);
  const auto columns = metric_columns(registry, rows);

  std::string rank_by = rows.front().run.rank_by.empty() && !columns.empty() ? columns.front().first : rows.front().run.rank_by;
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
  for (const auto& [key, higher] : columns)
    header.push_back(format == LeaderboardFormat::Markdown ? fmt::format("{} {}", key, higher ? "↑" : "↓") : key);
  for (const char* h : {"experiment", "config", "commit"}) header.push_back(h);

  std::vector<std::vector<std::string>> table;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    std::vector<std::string> cells = {std::to_string(i + 1), row.run.id, row.run.name};
    for (const auto& c : columns) {
      auto it = row.results.find(c.first);
      cells.push_back(it == row.results.end() ? "" : format_metric(it->second.value));
    }
    cells.push_back(row.run.experiment_path);
    cells.push_back(format == LeaderboardFormat::Markdown ? row.run.config_hash.substr(0, 12) : row.run.config_hash);
    std::string commit = row.run.git_commit.empty() ? "unknown" : row.run.git_commit.substr(0, format == LeaderboardFormat::Markdown ? 10 : 40);
    if (row.run.git_dirty) commit += "+dirty";
    cells.push_back(commit);
    table.push_back(std::move(cells));
  }
  std::string title = fmt::format("## Leaderboard: {} (ranked by {}, {} is better; {} finished run{})\n\n", benchmark, rank_by,
                                  higher_better ? "higher" : "lower", rows.size(), rows.size() == 1 ? "" : "s");
  return render_table(header, table, 3, columns.size(), format, title);
}

}  // namespace asg
