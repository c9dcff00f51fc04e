// `asg leaderboard --summary`: runs grouped by run name and protocol, mean ± sample std per metric.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "asg/error.h"
#include "asg/leaderboard.h"
#include "leaderboard_rows.h"
#include "statistics.h"

namespace asg {

using namespace reports;

namespace {

// A group is one run name under one protocol: the same arm measured two ways is two groups, never one mean over
// incomparable numbers.
struct Group {
  std::string name;
  std::string protocol;
  std::vector<const Row*> runs;
};

// The groups of `rows` (only the run names in `names`, when it is not empty); asg::Error(Config) naming the
// names that have no finished run and the run names there are.
std::vector<Group> collect_groups(const std::vector<Row>& rows, const std::vector<std::string>& names, const std::string& benchmark) {
  std::vector<Group> groups;
  for (const auto& row : rows) {
    if (!names.empty() && std::find(names.begin(), names.end(), row.run.name) == names.end()) continue;
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const Group& g) { return g.name == row.run.name && g.protocol == row.run.protocol_hash; });
    if (it == groups.end()) it = groups.insert(groups.end(), Group{row.run.name, row.run.protocol_hash, {}});
    it->runs.push_back(&row);
  }
  std::vector<std::string> missing;
  for (const auto& n : names)
    if (std::none_of(groups.begin(), groups.end(), [&](const Group& g) { return g.name == n; })) missing.push_back(n);
  if (!missing.empty()) {
    std::set<std::string> known;
    for (const auto& row : rows) known.insert(row.run.name);
    throw config_error(fmt::format("no finished runs named {} in benchmark '{}' (run names there: {})", fmt::join(missing, ", "),
                                   benchmark, fmt::join(known, ", ")));
  }
  return groups;
}

// The finite values of metric `key` over a group's runs.
Stat metric_stat(const Group& g, const std::string& key) {
  std::vector<double> v;
  for (const Row* r : g.runs)
    if (const ResultValue* x = r->find(key); x && std::isfinite(x->value)) v.push_back(x->value);
  return stat_of(v);
}

// One row of the summary: name, protocol (when there are several), runs, seeds, mean wall minutes, each metric.
std::vector<std::string> summary_cells(const Group& g, const std::vector<std::pair<std::string, bool>>& columns,
                                       bool several_protocols, LeaderboardFormat format) {
  std::vector<int64_t> seeds;
  std::vector<double> minutes;
  for (const Row* r : g.runs) {
    seeds.push_back(r->run.seed);
    if (r->run.started_ms && r->run.ended_ms) minutes.push_back((*r->run.ended_ms - *r->run.started_ms) / 60000.0);
  }
  std::sort(seeds.begin(), seeds.end());
  std::vector<std::string> cells = {g.name};
  if (several_protocols) {
    if (format == LeaderboardFormat::Csv) cells.push_back(g.protocol);
    else cells.push_back(g.protocol.empty() ? "not recorded" : short_hash(g.protocol));
  }
  cells.push_back(std::to_string(g.runs.size()));
  cells.push_back(fmt::format("{}", fmt::join(seeds, " ")));
  const Stat wall = stat_of(minutes);
  cells.push_back(wall.n ? fmt::format("{:.1f}", wall.mean) : "");
  for (const auto& [key, higher] : columns) {
    const Stat s = metric_stat(g, key);
    if (s.n == 0) cells.push_back("");
    else if (format == LeaderboardFormat::Csv) cells.push_back(s.n > 1 ? fmt::format("{:.6g} ± {:.6g}", s.mean, s.std) : fmt::format("{:.6g}", s.mean));
    else cells.push_back(s.n > 1 ? fmt::format("{} ± {}", format_metric(s.mean), format_metric(s.std)) : format_metric(s.mean));
  }
  return cells;
}

}  // namespace

std::string render_group_summary(const Registry& registry, const std::string& benchmark, const std::vector<std::string>& names,
                                 LeaderboardFormat format) {
  std::vector<Row> rows = finished_rows(registry, benchmark);
  if (rows.empty()) throw_no_runs(registry, benchmark);
  std::vector<Group> groups = collect_groups(rows, names, benchmark);
  // Protocols in leaderboard order: the current one first, runs from before schema 3 last.
  std::vector<std::string> protocols;
  for (const auto& pg : group_by_protocol(registry, benchmark, rows))
    if (std::any_of(groups.begin(), groups.end(), [&](const Group& g) { return g.protocol == pg.hash; })) protocols.push_back(pg.hash);
  auto protocol_index = [&](const Group& g) { return std::find(protocols.begin(), protocols.end(), g.protocol) - protocols.begin(); };
  auto name_index = [&](const Group& g) { return std::find(names.begin(), names.end(), g.name) - names.begin(); };
  const bool several_protocols = protocols.size() > 1;

  const auto columns = metric_columns(rows);
  const std::string rank_by = rows.front().run.rank_by.empty() ? columns.front().first : rows.front().run.rank_by;
  if (names.empty()) {
    bool higher = true;
    for (const auto& c : columns)
      if (c.first == rank_by) higher = c.second;
    std::stable_sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) {
      if (protocol_index(a) != protocol_index(b)) return protocol_index(a) < protocol_index(b);
      double ma = metric_stat(a, rank_by).mean, mb = metric_stat(b, rank_by).mean;
      if (std::isnan(ma) != std::isnan(mb)) return !std::isnan(ma);
      return higher ? ma > mb : ma < mb;
    });
  } else {
    std::stable_sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) {
      if (name_index(a) != name_index(b)) return name_index(a) < name_index(b);
      return protocol_index(a) < protocol_index(b);
    });
  }

  // With a single protocol the table is the one it always was; the column appears only when it tells groups apart.
  std::vector<std::string> header = {"name"};
  if (several_protocols) header.push_back("protocol");
  for (const char* h : {"runs", "seeds", "wall min"}) header.push_back(h);
  for (const auto& [key, higher] : columns)
    header.push_back(format == LeaderboardFormat::Markdown ? fmt::format("{} {}", key, higher ? "↑" : "↓") : key);
  std::vector<std::vector<std::string>> table;
  for (const auto& g : groups) table.push_back(summary_cells(g, columns, several_protocols, format));
  std::string order = names.empty() ? rank_by : "the order asked for";
  if (several_protocols) order = names.empty() ? "protocol, then " + rank_by : "the order asked for, then protocol";
  const std::string protocols_note =
      several_protocols ? fmt::format(" under {} protocols, not comparable with each other", protocols.size()) : "";
  const std::string title = fmt::format("## Summary: {} ({} groups{}; mean ± sample std over runs; ordered by {})\n\n", benchmark,
                                        groups.size(), protocols_note, order);
  return render_table(header, table, several_protocols ? 5 : 4, columns.size(), format, title);
}

}  // namespace asg
