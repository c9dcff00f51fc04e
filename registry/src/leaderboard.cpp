#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "asg/error.h"
#include "asg/registry.h"

namespace asg {

namespace {

// A run's results under one protocol: the run's own (result_set 0), or a result set `asg eval` added to it under
// another protocol, in which case run.benchmark, rank_by and the protocol fields are the set's.
struct Row {
  RunRecord run;
  std::map<std::string, ResultValue> results;
  std::vector<std::string> order;  // the keys as recorded
  int64_t result_set = 0;
};

Row make_row(RunRecord run, const std::vector<ResultValue>& values, int64_t result_set) {
  Row row{std::move(run), {}, {}, result_set};
  for (const auto& r : values) {
    row.results[r.key] = r;
    row.order.push_back(r.key);
  }
  return row;
}

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
  auto add = [&](const std::string& key, bool higher) {
    for (const auto& c : columns)
      if (c.first == key) return;
    columns.emplace_back(key, higher);
  };
  for (const auto& key : rows.front().order) add(key, rows.front().results.at(key).higher_is_better);
  for (const auto& row : rows)
    for (const auto& [key, value] : row.results) add(key, value.higher_is_better);
  return columns;
}

// Newest first: the benchmark's finished runs, and the finished result sets that `asg eval` added under the
// benchmark to finished runs (the newest set per run and protocol; none where the run's own results are already
// under that protocol). A set counts as new as its evaluation.
std::vector<Row> finished_rows(const Registry& registry, const std::string& benchmark) {
  std::vector<Row> rows;
  std::set<std::pair<std::string, std::string>> measured;  // (run, protocol)
  for (auto& run : registry.list_runs(benchmark, RunStatus::Finished)) {
    measured.insert({run.id, run.protocol_hash});
    const auto values = registry.results(run.id);
    rows.push_back(make_row(std::move(run), values, 0));
  }
  for (const auto& set : registry.result_sets("", benchmark)) {
    if (set.status != RunStatus::Finished || (!benchmark.empty() && set.benchmark != benchmark)) continue;
    if (!measured.insert({set.run_id, set.protocol_hash}).second) continue;
    auto run = registry.find_run(set.run_id);
    if (!run || run->status != RunStatus::Finished) continue;
    run->benchmark = set.benchmark;
    run->rank_by = set.rank_by;
    run->protocol_hash = set.protocol_hash;
    run->protocol_json = set.protocol_json;
    run->created_ms = set.created_ms;
    rows.push_back(make_row(std::move(*run), registry.result_set_values(set.id), set.id));
  }
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


// ---- protocols -------------------------------------------------------------------------------------
// Numbers measured under different protocols (another sample count, another metric version) are not
// comparable, so the leaderboard ranks each protocol on its own. The protocol hash decides the grouping;
// the protocol JSON only explains it.

std::string short_hash(const std::string& hash) { return hash.substr(0, 12); }

struct ProtocolGroup {
  std::string hash;  // "" = recorded before schema 3
  std::string json;  // the newest recorded protocol_json of the group ("" if none)
  std::vector<Row> rows;  // newest first
};

// Groups rows (newest first) by protocol. The first group is the protocol of the newest run that recorded
// one: the protocol that the benchmark is measured under now. Other recorded protocols follow, newest
// first; runs without a protocol come last (or alone, in a registry that has only those).
std::vector<ProtocolGroup> group_by_protocol(std::vector<Row> rows) {
  std::vector<ProtocolGroup> groups;
  for (auto& row : rows) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const ProtocolGroup& g) { return g.hash == row.run.protocol_hash; });
    if (it == groups.end()) it = groups.insert(groups.end(), ProtocolGroup{row.run.protocol_hash, "", {}});
    if (it->json.empty()) it->json = row.run.protocol_json;
    it->rows.push_back(std::move(row));
  }
  std::stable_partition(groups.begin(), groups.end(), [](const ProtocolGroup& g) { return !g.hash.empty(); });
  return groups;
}

// {"eval": {"num_samples": 32}} -> {"eval.num_samples": "32"}; leaves (arrays included) as compact JSON.
void flatten(const nlohmann::json& value, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) flatten(child, prefix.empty() ? key : prefix + "." + key, out);
  } else if (!prefix.empty()) {
    out[prefix] = value.dump();
  }
}

std::map<std::string, std::string> flat_protocol(const std::string& json) {
  std::map<std::string, std::string> out;
  // create_run accepts only JSON objects; a row written some other way is shown as having no fields.
  const auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) flatten(parsed, "", out);
  return out;
}

// "eval.num_samples = 64 (above: 32), metrics.fid.version = \"3\" (above: \"2\")": the fields of `other`
// that differ from `ranked`, by dotted key. At most kShown fields are named.
std::string protocol_difference(const ProtocolGroup& ranked, const ProtocolGroup& other) {
  if (ranked.json.empty() || other.json.empty()) return "fields not recorded";
  const auto above = flat_protocol(ranked.json), here = flat_protocol(other.json);
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

}  // namespace

std::string render_group_summary(const Registry& registry, const std::string& benchmark, const std::vector<std::string>& names,
                                 LeaderboardFormat format) {
  std::vector<Row> rows = finished_rows(registry, benchmark);
  if (rows.empty()) throw_no_runs(registry, benchmark);
  // A group is one run name under one protocol: the same arm measured two ways is two groups, never one
  // mean over incomparable numbers.
  struct Group {
    std::string name;
    std::string protocol;
    std::vector<const Row*> runs;
  };
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
  // Protocols in leaderboard order: the current one first, runs from before schema 3 last.
  std::vector<std::string> protocols;
  for (const auto& pg : group_by_protocol(rows))
    if (std::any_of(groups.begin(), groups.end(), [&](const Group& g) { return g.protocol == pg.hash; })) protocols.push_back(pg.hash);
  auto protocol_index = [&](const Group& g) { return std::find(protocols.begin(), protocols.end(), g.protocol) - protocols.begin(); };
  auto name_index = [&](const Group& g) { return std::find(names.begin(), names.end(), g.name) - names.begin(); };
  const bool several_protocols = protocols.size() > 1;

  const auto columns = metric_columns(rows);
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
  for (const auto& g : groups) {
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
  std::string order = names.empty() ? rank_by : "the order asked for";
  if (several_protocols) order = names.empty() ? "protocol, then " + rank_by : "the order asked for, then protocol";
  const std::string protocols_note =
      several_protocols ? fmt::format(" under {} protocols, not comparable with each other", protocols.size()) : "";
  std::string title = fmt::format("## Summary: {} ({} groups{}; mean ± sample std over runs; ordered by {})\n\n", benchmark,
                                  groups.size(), protocols_note, order);
  return render_table(header, table, several_protocols ? 5 : 4, columns.size(), format, title);
}

namespace {

struct Ranking {
  std::string rank_by;
  bool higher_better = true;
};

// Orders rows best first by the rank metric of the newest row (or the first metric column); returns it.
Ranking rank_rows(std::vector<Row>& rows, const std::vector<std::pair<std::string, bool>>& columns) {
  Ranking ranking;
  ranking.rank_by = rows.front().run.rank_by.empty() && !columns.empty() ? columns.front().first : rows.front().run.rank_by;
  for (const auto& row : rows)
    if (auto it = row.results.find(ranking.rank_by); it != row.results.end()) ranking.higher_better = it->second.higher_is_better;
  // Runs missing the rank metric go last; ties keep newest first.
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    auto ia = a.results.find(ranking.rank_by), ib = b.results.find(ranking.rank_by);
    bool ha = ia != a.results.end() && std::isfinite(ia->second.value);
    bool hb = ib != b.results.end() && std::isfinite(ib->second.value);
    if (ha != hb) return ha;
    if (!ha) return false;
    return ranking.higher_better ? ia->second.value > ib->second.value : ia->second.value < ib->second.value;
  });
  return ranking;
}

std::vector<std::string> leaderboard_header(const std::vector<std::pair<std::string, bool>>& columns, LeaderboardFormat format) {
  std::vector<std::string> header = {"rank", "run", "name"};
  for (const auto& [key, higher] : columns)
    header.push_back(format == LeaderboardFormat::Markdown ? fmt::format("{} {}", key, higher ? "↑" : "↓") : key);
  for (const char* h : {"experiment", "config", "commit"}) header.push_back(h);
  return header;
}

std::vector<std::string> leaderboard_cells(const Row& row, size_t rank, const std::vector<std::pair<std::string, bool>>& columns,
                                           LeaderboardFormat format) {
  // A result set's row names the run and the set (asg runs show RUN lists them).
  std::vector<std::string> cells = {std::to_string(rank),
                                    row.result_set == 0 ? row.run.id : fmt::format("{} (eval {})", row.run.id, row.result_set),
                                    row.run.name};
  for (const auto& c : columns) {
    auto it = row.results.find(c.first);
    cells.push_back(it == row.results.end() ? "" : format_metric(it->second.value));
  }
  cells.push_back(row.run.experiment_path);
  cells.push_back(format == LeaderboardFormat::Markdown ? row.run.config_hash.substr(0, 12) : row.run.config_hash);
  std::string commit = row.run.git_commit.empty() ? "unknown" : row.run.git_commit.substr(0, format == LeaderboardFormat::Markdown ? 10 : 40);
  if (row.run.git_dirty) commit += "+dirty";
  cells.push_back(commit);
  return cells;
}

std::string ranking_clause(const Ranking& ranking, size_t runs) {
  return fmt::format("ranked by {}, {} is better; {} finished run{}", ranking.rank_by, ranking.higher_better ? "higher" : "lower",
                     runs, runs == 1 ? "" : "s");
}

}  // namespace

std::string render_leaderboard(const Registry& registry, const std::string& benchmark, LeaderboardFormat format) {
  std::vector<Row> rows = finished_rows(registry, benchmark);
  if (rows.empty()) throw_no_runs(registry, benchmark);
  const auto all_columns = metric_columns(rows);
  auto groups = group_by_protocol(std::move(rows));

  if (format == LeaderboardFormat::Csv) {
    // One table for machines: the same columns as ever, the full protocol hash last, and the rank
    // restarting in each protocol, since ranks across protocols would compare incomparable numbers.
    auto header = leaderboard_header(all_columns, format);
    header.push_back("protocol");
    std::vector<std::vector<std::string>> table;
    for (auto& group : groups) {
      rank_rows(group.rows, metric_columns(group.rows));
      for (size_t i = 0; i < group.rows.size(); ++i) {
        auto cells = leaderboard_cells(group.rows[i], i + 1, all_columns, format);
        cells.push_back(group.hash);
        table.push_back(std::move(cells));
      }
    }
    return render_table(header, table, 3, all_columns.size(), format, "");
  }

  std::string out;
  for (size_t g = 0; g < groups.size(); ++g) {
    auto& group = groups[g];
    const auto columns = metric_columns(group.rows);
    const Ranking ranking = rank_rows(group.rows, columns);
    std::vector<std::vector<std::string>> table;
    for (size_t i = 0; i < group.rows.size(); ++i) table.push_back(leaderboard_cells(group.rows[i], i + 1, columns, format));
    std::string title;
    if (g == 0)
      title = fmt::format("## Leaderboard: {}{} ({})\n\n", benchmark,
                          group.hash.empty() ? "" : " under protocol " + short_hash(group.hash), ranking_clause(ranking, group.rows.size()));
    else if (group.hash.empty())
      title = fmt::format("## Protocol not recorded (run before schema 3; not ranked with the above; {})\n\n",
                          ranking_clause(ranking, group.rows.size()));
    else
      title = fmt::format("## Other protocol {} (not ranked with the above; differs in: {}; {})\n\n", short_hash(group.hash),
                          protocol_difference(groups.front(), group), ranking_clause(ranking, group.rows.size()));
    if (g > 0) out += "\n";
    out += render_table(leaderboard_header(columns, format), table, 3, columns.size(), format, title);
  }
  return out;
}

}  // namespace asg
