#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "asg/error.h"
#include "asg/registry.h"
#include "asg/run_query.h"

namespace asg {

namespace {

// A run's results under one protocol: the run's own (result_set 0), or a result set `asg eval` added to it under
// another protocol, in which case run.benchmark, rank_by and the protocol fields are the set's.
struct Row {
  RunRecord run;
  std::vector<ResultValue> values;  // as recorded, in order (a dozen: a linear search beats a map here)
  int64_t result_set = 0;
  const ResultValue* find(const std::string& key) const {
    for (const auto& v : values)
      if (v.key == key) return &v;
    return nullptr;
  }
};

Row make_row(RunRecord run, std::vector<ResultValue> values, int64_t result_set) { return Row{std::move(run), std::move(values), result_set}; }

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

// A Markdown or CSV table written row by row into `out`: a table of 100k runs has two million cells, which are
// written as they are made rather than held.
class TableWriter {
 public:
  TableWriter(std::string& out, LeaderboardFormat format) : out_(out), format_(format) {}

  void header(const std::vector<std::string>& header, size_t first_numeric, size_t numeric_count, const std::string& title) {
    if (format_ == LeaderboardFormat::Csv) {
      row(header);
      return;
    }
    out_ += title;
    row(header);
    std::vector<std::string> separator;
    for (size_t i = 0; i < header.size(); ++i)
      separator.push_back(i >= first_numeric && i < first_numeric + numeric_count ? "---:" : "---");
    row(separator);
  }

  void row(const std::vector<std::string>& cells) {
    const bool csv = format_ == LeaderboardFormat::Csv;
    out_ += csv ? "" : "| ";
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i) out_ += csv ? "," : " | ";
      if (csv) out_ += csv_field(cells[i]);
      else markdown_cell(cells[i]);
    }
    out_ += csv ? "\n" : " |\n";
  }

 private:
  // A '|' inside a cell (a run name, a path) would end it: Markdown's escape keeps the table's shape.
  void markdown_cell(const std::string& c) {
    if (c.find('|') == std::string::npos) {
      out_ += c;
      return;
    }
    for (char ch : c) {
      if (ch == '|') out_ += '\\';
      out_ += ch;
    }
  }
  std::string& out_;
  LeaderboardFormat format_;
};

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

struct ProtocolGroup {
  std::string hash;  // "" = recorded before schema 3
  std::string json;  // the newest recorded protocol_json of the group ("" if none)
  std::vector<Row> rows;  // newest first
};

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
  for (const auto& pg : group_by_protocol(registry, benchmark, rows))
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
      if (const ResultValue* x = r->find(key); x && std::isfinite(x->value)) v.push_back(x->value);
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

Ranking ranking_of(const std::vector<Row>& rows, const std::vector<std::pair<std::string, bool>>& columns) {
  Ranking ranking;
  ranking.rank_by = rows.front().run.rank_by.empty() && !columns.empty() ? columns.front().first : rows.front().run.rank_by;
  for (const auto& row : rows)
    if (const ResultValue* x = row.find(ranking.rank_by)) ranking.higher_better = x->higher_is_better;
  return ranking;
}

std::vector<std::string> leaderboard_header(const std::vector<std::pair<std::string, bool>>& columns, LeaderboardFormat format) {
  std::vector<std::string> header = {"rank", "run", "name"};
  for (const auto& [key, higher] : columns)
    header.push_back(format == LeaderboardFormat::Markdown ? fmt::format("{} {}", key, higher ? "↑" : "↓") : key);
  for (const char* h : {"experiment", "config", "commit"}) header.push_back(h);
  return header;
}

std::string run_label(const Row& row) {
  // A result set's row names the run and the set (asg runs show RUN lists them).
  return row.result_set == 0 ? row.run.id : fmt::format("{} (eval {})", row.run.id, row.result_set);
}

std::string commit_label(const RunRecord& run, LeaderboardFormat format) {
  std::string commit = run.git_commit.empty() ? "unknown" : run.git_commit.substr(0, format == LeaderboardFormat::Markdown ? 10 : 40);
  if (run.git_dirty) commit += "+dirty";
  return commit;
}

std::string ranking_clause(const Ranking& ranking, size_t runs) {
  return fmt::format("ranked by {}, {} is better; {} finished run{}", ranking.rank_by, ranking.higher_better ? "higher" : "lower",
                     runs, runs == 1 ? "" : "s");
}

// ---- rows of the leaderboard: single runs, seeds of one config, or the values of one config key -----------

struct Stat {
  double mean = std::nan(""), std = std::nan("");
  size_t n = 0;  // finite values
};

Stat stat_of(const std::vector<double>& values) {
  Stat s;
  s.n = values.size();
  if (values.empty()) return s;
  double sum = 0;
  for (double x : values) sum += x;
  s.mean = sum / values.size();
  if (values.size() > 1) {
    double ss = 0;
    for (double x : values) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / (values.size() - 1));  // sample std (n - 1), as papers report over seeds
  }
  return s;
}

struct Entry {
  std::string key;                // what makes the rows one entry
  std::string label;              // the group-by value; the run names otherwise
  std::vector<const Row*> rows;   // newest first
  std::vector<Stat> stats;         // one per metric column, in the columns' order (the section's)
};

struct Section {
  const ProtocolGroup* group = nullptr;
  std::vector<std::pair<std::string, bool>> columns;
  Ranking ranking;
  std::vector<Entry> entries;  // best first
  std::string title_detail;    // for sections after the first: how its protocol differs
};

enum class Grouping { Runs, Seeds, Key };

// The run's config text, read when the listing left it out.
const std::string& config_of(const Registry& registry, Row& row) {
  if (row.run.config_text.empty()) row.run.config_text = registry.config_text(row.run.id);
  return row.run.config_text;
}

// Entries of one name (a sweep's points all carry the experiment's) are told apart by the config keys in which they
// differ: "small (temporal.plugin=sti, train.lr=0.002)", at most kShownKeys keys, the seed never among them.
void name_apart(const Registry& registry, std::vector<Entry>& entries) {
  constexpr size_t kShownKeys = 4;
  std::unordered_map<std::string, std::vector<size_t>> by_label;
  for (size_t i = 0; i < entries.size(); ++i) by_label[entries[i].label].push_back(i);
  for (auto& [label, members] : by_label) {
    if (members.size() < 2) continue;
    std::vector<std::map<std::string, std::string>> configs;
    for (size_t i : members) {
      Row& newest = const_cast<Row&>(*entries[i].rows.front());  // the rows are make_entries' own, held const only here
      auto flat = flat_config(config_of(registry, newest));
      for (const char* key : {"runtime.seed", "name", "description"}) flat.erase(key);
      configs.push_back(std::move(flat));
    }
    std::set<std::string> keys;
    for (const auto& c : configs)
      for (const auto& [k, v] : c) keys.insert(k);
    std::vector<std::string> differing;
    for (const auto& k : keys) {
      auto value = [&](const std::map<std::string, std::string>& c) { auto it = c.find(k); return it == c.end() ? std::string("(not set)") : it->second; };
      if (std::any_of(configs.begin(), configs.end(), [&](const auto& c) { return value(c) != value(configs.front()); })) differing.push_back(k);
    }
    // A slot whose plugin differs brings other parameters with it: the plugin names the difference, its keys do not.
    std::vector<std::string> switched;
    for (const auto& k : differing)
      if (k.size() > 7 && k.compare(k.size() - 7, 7, ".plugin") == 0) switched.push_back(k.substr(0, k.size() - 6));
    std::erase_if(differing, [&](const std::string& k) {
      return std::any_of(switched.begin(), switched.end(), [&](const std::string& slot) { return k.rfind(slot, 0) == 0 && k != slot + "plugin"; });
    });
    if (differing.empty()) continue;
    for (size_t m = 0; m < members.size(); ++m) {
      std::vector<std::string> parts;
      for (size_t k = 0; k < differing.size() && k < kShownKeys; ++k) {
        auto it = configs[m].find(differing[k]);
        parts.push_back(differing[k] + "=" + (it == configs[m].end() ? "(not set)" : it->second));
      }
      if (differing.size() > kShownKeys) parts.push_back(fmt::format("+{} keys", differing.size() - kShownKeys));
      entries[members[m]].label += fmt::format(" ({})", fmt::join(parts, ", "));
    }
  }
}

std::vector<Entry> make_entries(const Registry& registry, std::vector<Row>& rows, Grouping grouping, const RunSelector& group_by_reader,
                                const std::string& group_by,
                                const std::vector<std::pair<std::string, bool>>& columns) {
  std::vector<Entry> entries;
  std::unordered_map<std::string, size_t> index;
  if (grouping == Grouping::Runs) {
    entries.reserve(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) entries.push_back(Entry{std::to_string(i), rows[i].run.name, {&rows[i]}, {}});
  }
  for (size_t i = 0; i < rows.size() && grouping != Grouping::Runs; ++i) {
    Row& row = rows[i];
    std::string key;
    std::string label = row.run.name;
    if (grouping == Grouping::Seeds) {
      // The config without its seed (and name); a row without a recorded config is its own entry.
      key = !row.run.seedless_hash.empty() ? row.run.seedless_hash : seedless_config_hash(config_of(registry, row));
      if (key.empty()) key = "run:" + row.run.id;
    } else {
      const KeyValue v = group_by_reader.value_of(row.run, group_by);
      key = v.found ? "=" + v.value : "";
      label = v.found ? v.value : "(not set)";
    }
    auto [it, inserted] = index.emplace(key, entries.size());
    if (inserted) entries.push_back(Entry{key, label, {}, {}});
    Entry& e = entries[it->second];
    // Runs of one config under other names (a sweep's points, a renamed experiment) are named together.
    if (grouping == Grouping::Seeds && std::none_of(e.rows.begin(), e.rows.end(), [&](const Row* r) { return r->run.name == row.run.name; }) &&
        !e.rows.empty())
      e.label += ", " + row.run.name;
    e.rows.push_back(&row);
  }
  // Each row's values go to their columns in one pass: a run records its results in the columns' order nearly always,
  // so the value at position j is tried against column j before the columns are searched.
  std::unordered_map<std::string, size_t> column_of;
  for (size_t c = 0; c < columns.size(); ++c) column_of.emplace(columns[c].first, c);
  std::vector<std::vector<double>> values(columns.size());  // reused: finite values per column, newest run first
  for (auto& e : entries) {
    for (auto& v : values) v.clear();
    for (const Row* r : e.rows)
      for (size_t j = 0; j < r->values.size(); ++j) {
        const ResultValue& x = r->values[j];
        if (!std::isfinite(x.value)) continue;
        size_t c = j;
        if (c >= columns.size() || columns[c].first != x.key) {
          auto it = column_of.find(x.key);
          if (it == column_of.end()) continue;  // a key that no column shows
          c = it->second;
        }
        values[c].push_back(x.value);
      }
    e.stats.reserve(columns.size());
    for (const auto& v : values) e.stats.push_back(stat_of(v));
  }
  if (grouping == Grouping::Seeds) name_apart(registry, entries);
  return entries;
}

void rank_entries(std::vector<Entry>& entries, const Ranking& ranking, const std::vector<std::pair<std::string, bool>>& columns) {
  // Entries missing the rank metric go last; ties keep newest first. Indices are sorted, then the entries moved
  // once: an Entry is too large to shuffle through a merge sort.
  const auto column = std::find_if(columns.begin(), columns.end(), [&](const auto& c) { return c.first == ranking.rank_by; });
  std::vector<double> mean(entries.size(), std::nan(""));
  if (column != columns.end())
    for (size_t i = 0; i < entries.size(); ++i) mean[i] = entries[i].stats[static_cast<size_t>(column - columns.begin())].mean;
  std::vector<size_t> order(entries.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const double ma = mean[a], mb = mean[b];
    if (std::isnan(ma) != std::isnan(mb)) return !std::isnan(ma);
    if (std::isnan(ma)) return false;
    return ranking.higher_better ? ma > mb : ma < mb;
  });
  std::vector<Entry> ranked;
  ranked.reserve(entries.size());
  for (size_t i : order) ranked.push_back(std::move(entries[i]));
  entries = std::move(ranked);
}

// "0 1 2"; a seed that several runs share is counted ("0×3 1"), so that a --group-by row over thousands of runs
// stays one short cell.
std::string seeds_text(const Entry& e) {
  std::map<int64_t, size_t> seeds;
  for (const Row* r : e.rows) ++seeds[r->run.seed];
  std::string out;
  for (const auto& [seed, count] : seeds) {
    if (!out.empty()) out += ' ';
    out += count == 1 ? std::to_string(seed) : fmt::format("{}×{}", seed, count);
  }
  return out;
}

std::string stat_cell(const Stat& s) {
  if (s.n == 0) return "";
  if (s.n == 1) return format_metric(s.mean);
  return fmt::format("{} ± {}", format_metric(s.mean), format_metric(s.std));
}

std::string number_text(double v) { return std::isfinite(v) ? fmt::format("{:.10g}", v) : ""; }

// ---- LaTeX ---------------------------------------------------------------------------------------------

std::string latex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\textbackslash{}"; break;
      case '{': case '}': case '$': case '&': case '#': case '_': case '%': out += '\\'; out += c; break;
      case '^': out += "\\textasciicircum{}"; break;
      case '~': out += "\\textasciitilde{}"; break;
      case '<': out += "\\textless{}"; break;
      case '>': out += "\\textgreater{}"; break;
      default: out += c;
    }
  }
  return out;
}

std::string latex_number(double v) {
  if (!std::isfinite(v)) return "--";
  if (std::fabs(v) >= 1000) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3f}", v);
}

// The best mean of each metric in a section: the one ranking would put first.
std::map<std::string, double> best_means(const Section& section) {
  std::map<std::string, double> best;
  for (size_t c = 0; c < section.columns.size(); ++c)
    for (const auto& e : section.entries) {
      const auto& [key, higher] = section.columns[c];
      const double m = e.stats[c].mean;
      if (std::isnan(m)) continue;
      auto it = best.find(key);
      if (it == best.end() || (higher ? m > it->second : m < it->second)) best[key] = m;
    }
  return best;
}

std::string render_latex_section(const Section& section, const std::string& benchmark, Grouping grouping, const std::string& group_by,
                                 size_t index) {
  const auto best = best_means(section);
  const std::string first_header = grouping == Grouping::Key ? latex_escape(group_by) : "Method";
  std::string out;
  out += "\\begin{table}[t]\n\\centering\n";
  std::string caption = latex_escape(benchmark);
  if (!section.group->hash.empty()) caption += fmt::format(", protocol \\texttt{{{}}}", short_hash(section.group->hash));
  if (index > 0) caption += " (not comparable with the first table)";
  caption += grouping == Grouping::Runs ? "; one row per run" : "; mean $\\pm$ sample std over $n$ runs";
  caption += fmt::format("; best in bold; ranked by {}", latex_escape(section.ranking.rank_by));
  out += fmt::format("\\caption{{{}}}\n", caption);
  out += fmt::format("\\begin{{tabular}}{{l{}{}}}\n\\toprule\n", grouping == Grouping::Runs ? "" : "r",
                     std::string(section.columns.size(), 'r'));
  out += first_header;
  if (grouping != Grouping::Runs) out += " & $n$";
  for (const auto& [key, higher] : section.columns) out += fmt::format(" & {} {}", latex_escape(key), higher ? "$\\uparrow$" : "$\\downarrow$");
  out += " \\\\\n\\midrule\n";
  for (const auto& e : section.entries) {
    out += latex_escape(grouping == Grouping::Runs ? e.rows.front()->run.name : e.label);
    if (grouping != Grouping::Runs) out += fmt::format(" & {}", e.rows.size());
    for (size_t c = 0; c < section.columns.size(); ++c) {
      const std::string& key = section.columns[c].first;
      const Stat& s = e.stats[c];
      if (s.n == 0) {
        out += " & --";
        continue;
      }
      std::string mean = latex_number(s.mean);
      if (auto b = best.find(key); b != best.end() && s.mean == b->second) mean = "\\textbf{" + mean + "}";
      out += s.n > 1 ? fmt::format(" & {} $\\pm$ {}", mean, latex_number(s.std)) : " & " + mean;
    }
    out += " \\\\\n";
  }
  out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  return out;
}

// ---- JSON ----------------------------------------------------------------------------------------------

nlohmann::json json_number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

nlohmann::json section_json(const Section& section, Grouping grouping, size_t index) {
  nlohmann::json j;
  j["protocol_hash"] = section.group->hash;
  const auto protocol = nlohmann::json::parse(section.group->json, nullptr, false);
  j["protocol"] = protocol.is_object() ? protocol : nlohmann::json();
  j["ranked_with_first"] = index == 0;
  if (index > 0) j["differs_from_first"] = section.title_detail;
  j["rank_by"] = section.ranking.rank_by;
  j["higher_is_better"] = section.ranking.higher_better;
  j["metrics"] = nlohmann::json::array();
  for (const auto& [key, higher] : section.columns) j["metrics"].push_back({{"key", key}, {"higher_is_better", higher}});
  j["rows"] = nlohmann::json::array();
  for (size_t i = 0; i < section.entries.size(); ++i) {
    const Entry& e = section.entries[i];
    nlohmann::json row = {{"rank", i + 1}, {"label", e.label}, {"n", e.rows.size()}};
    if (grouping != Grouping::Runs) {
      std::vector<int64_t> seeds;
      for (const Row* r : e.rows) seeds.push_back(r->run.seed);
      row["seeds"] = seeds;
    }
    row["runs"] = nlohmann::json::array();
    for (const Row* r : e.rows) {
      nlohmann::json run = {{"id", r->run.id},
                            {"name", r->run.name},
                            {"seed", r->run.seed},
                            {"experiment", r->run.experiment_path},
                            {"config_hash", r->run.config_hash},
                            {"commit", r->run.git_commit},
                            {"dirty", r->run.git_dirty}};
      if (r->result_set != 0) run["result_set"] = r->result_set;
      row["runs"].push_back(std::move(run));
    }
    row["metrics"] = nlohmann::json::object();
    for (size_t c = 0; c < section.columns.size(); ++c) {
      const std::string& key = section.columns[c].first;
      const Stat& s = e.stats[c];
      std::vector<double> values;  // finite values, newest run first: what the mean and std were computed from
      for (const Row* r : e.rows)
        if (const ResultValue* x = r->find(key); x && std::isfinite(x->value)) values.push_back(x->value);
      row["metrics"][key] = {{"mean", json_number(s.mean)}, {"std", json_number(s.std)}, {"n", s.n}, {"values", values}};
    }
    j["rows"].push_back(std::move(row));
  }
  return j;
}

std::string section_title(const Section& section, const std::string& benchmark, size_t index, Grouping grouping, size_t runs) {
  std::string clause = ranking_clause(section.ranking, runs);
  if (grouping == Grouping::Seeds)
    clause += fmt::format("; {} row{}: runs that differ only by seed, mean ± sample std", section.entries.size(),
                          section.entries.size() == 1 ? "" : "s");
  if (grouping == Grouping::Key) clause += "; mean ± sample std over the runs of each value";
  if (index == 0)
    return fmt::format("## Leaderboard: {}{} ({})\n\n", benchmark,
                       section.group->hash.empty() ? "" : " under protocol " + short_hash(section.group->hash), clause);
  if (section.group->hash.empty())
    return fmt::format("## Protocol not recorded (run before schema 3; not ranked with the above; {})\n\n", clause);
  return fmt::format("## Other protocol {} (not ranked with the above; differs in: {}; {})\n\n", short_hash(section.group->hash),
                     section.title_detail, clause);
}

}  // namespace

LeaderboardFormat parse_leaderboard_format(const std::string& name) {
  if (name == "md" || name == "markdown") return LeaderboardFormat::Markdown;
  if (name == "csv") return LeaderboardFormat::Csv;
  if (name == "json") return LeaderboardFormat::Json;
  if (name == "latex" || name == "tex") return LeaderboardFormat::Latex;
  if (name == "html") return LeaderboardFormat::Html;
  throw config_error(fmt::format("--format '{}': valid formats are md, csv, json, latex, html", name));
}

std::string render_leaderboard(const Registry& registry, const std::string& benchmark, LeaderboardFormat format) {
  LeaderboardOptions options;
  options.benchmark = benchmark;
  options.individual_runs = true;
  return render_leaderboard(registry, options, format);
}

std::string render_leaderboard_html(const Registry& registry, const LeaderboardOptions& options);  // leaderboard_html.cpp

std::string render_leaderboard(const Registry& registry, const LeaderboardOptions& options, LeaderboardFormat format) {
  if (format == LeaderboardFormat::Html) return render_leaderboard_html(registry, options);
  const std::string& benchmark = options.benchmark;
  if (options.individual_runs && !options.group_by.empty())
    throw config_error("--runs and --group-by ask for different rows (one per run, one per value of a key); give one of them");
  std::vector<Row> rows = finished_rows(registry, benchmark);
  if (rows.empty()) throw_no_runs(registry, benchmark);
  RunSelector selector(registry, parse_run_filters(options.where));
  // --group-by's key is checked as a --where key would be, and read through a selector of its own (once per config).
  RunSelector group_by(registry, options.group_by.empty() ? std::vector<RunFilter>{}
                                                          : std::vector<RunFilter>{{options.group_by, "", false, "--group-by " + options.group_by}});
  auto run_at = [&](size_t i) -> const RunRecord& { return rows[i].run; };
  selector.check_keys(rows.size(), run_at);
  group_by.check_keys(rows.size(), run_at);
  if (!selector.empty()) {
    std::erase_if(rows, [&](const Row& r) { return !selector.matches(r.run); });
    if (rows.empty())
      throw config_error(fmt::format("{}: no finished run of benchmark '{}' matches --where {}", registry.path().string(), benchmark,
                                     selector.describe()));
  }
  const Grouping grouping = options.individual_runs ? Grouping::Runs : options.group_by.empty() ? Grouping::Seeds : Grouping::Key;
  const auto all_columns = metric_columns(rows);
  auto groups = group_by_protocol(registry, benchmark, std::move(rows));
  std::vector<Section> sections;
  for (size_t g = 0; g < groups.size(); ++g) {
    Section section;
    section.group = &groups[g];
    section.columns = metric_columns(groups[g].rows);
    section.ranking = ranking_of(groups[g].rows, section.columns);
    section.entries = make_entries(registry, groups[g].rows, grouping, group_by, options.group_by, format == LeaderboardFormat::Csv ? all_columns : section.columns);
    rank_entries(section.entries, section.ranking, format == LeaderboardFormat::Csv ? all_columns : section.columns);
    if (g > 0 && !groups[g].hash.empty()) section.title_detail = protocol_difference(groups.front(), groups[g]);
    sections.push_back(std::move(section));
  }

  if (format == LeaderboardFormat::Json) {
    nlohmann::json j = {{"benchmark", benchmark},
                        {"rows", grouping == Grouping::Runs ? "runs" : grouping == Grouping::Seeds ? "seeds" : "group_by"}};
    if (grouping == Grouping::Key) j["group_by"] = options.group_by;
    if (!selector.empty()) j["where"] = options.where;
    j["sections"] = nlohmann::json::array();
    for (size_t i = 0; i < sections.size(); ++i) j["sections"].push_back(section_json(sections[i], grouping, i));
    return j.dump(2) + "\n";
  }
  if (format == LeaderboardFormat::Latex) {
    std::string out = fmt::format("% asg leaderboard --benchmark {} --format latex; needs \\usepackage{{booktabs}}\n", benchmark);
    for (size_t i = 0; i < sections.size(); ++i) {
      if (i) out += "\n";
      out += render_latex_section(sections[i], benchmark, grouping, options.group_by, i);
    }
    return out;
  }

  // Markdown and CSV share the cells.
  auto header_for = [&](const std::vector<std::pair<std::string, bool>>& columns) {
    if (grouping == Grouping::Runs) return leaderboard_header(columns, format);
    std::vector<std::string> header = {"rank"};
    if (grouping == Grouping::Key) header.push_back(options.group_by);
    else header.insert(header.end(), {"run", "name"});
    header.insert(header.end(), {"n", "seeds"});
    for (const auto& [key, higher] : columns) {
      if (format == LeaderboardFormat::Markdown) {
        header.push_back(fmt::format("{} {}", key, higher ? "↑" : "↓"));
      } else {
        header.push_back(key);
        header.push_back(key + "_std");
      }
    }
    if (grouping == Grouping::Seeds) header.insert(header.end(), {"experiment", "config", "commit"});
    return header;
  };
  auto cells_for = [&](const Entry& e, size_t rank, const std::vector<std::pair<std::string, bool>>& columns) {
    const Row& newest = *e.rows.front();
    std::vector<std::string> cells = {std::to_string(rank)};
    if (grouping == Grouping::Key) cells.push_back(e.label);
    else cells.insert(cells.end(), {run_label(newest), grouping == Grouping::Runs ? newest.run.name : e.label});
    if (grouping != Grouping::Runs) cells.insert(cells.end(), {std::to_string(e.rows.size()), seeds_text(e)});
    for (size_t c = 0; c < columns.size(); ++c) {
      const Stat& s = e.stats[c];
      if (format == LeaderboardFormat::Markdown) {
        cells.push_back(stat_cell(s));
      } else if (grouping == Grouping::Runs) {
        cells.push_back(s.n == 0 ? "" : format_metric(s.mean));
      } else {
        cells.push_back(number_text(s.mean));
        cells.push_back(number_text(s.std));
      }
    }
    if (grouping != Grouping::Key) {
      cells.push_back(newest.run.experiment_path);
      cells.push_back(format == LeaderboardFormat::Markdown ? newest.run.config_hash.substr(0, 12) : newest.run.config_hash);
      cells.push_back(commit_label(newest.run, format));
    }
    return cells;
  };
  const size_t numeric_from = grouping == Grouping::Runs ? 3 : grouping == Grouping::Key ? 4 : 5;

  if (format == LeaderboardFormat::Csv) {
    // One table for machines: the full protocol hash last, the rank restarting in each protocol, since ranks
    // across protocols would compare incomparable numbers.
    auto header = header_for(all_columns);
    header.push_back("protocol");
    std::string out;
    TableWriter writer(out, format);
    writer.header(header, numeric_from, all_columns.size(), "");
    for (const auto& section : sections)
      for (size_t i = 0; i < section.entries.size(); ++i) {
        auto cells = cells_for(section.entries[i], i + 1, all_columns);
        cells.push_back(section.group->hash);
        writer.row(cells);
      }
    return out;
  }
  std::string out;
  TableWriter writer(out, format);
  for (size_t g = 0; g < sections.size(); ++g) {
    const Section& section = sections[g];
    if (g > 0) out += "\n";
    writer.header(header_for(section.columns), numeric_from, section.columns.size(),
                  section_title(section, benchmark, g, grouping, section.group->rows.size()));
    for (size_t i = 0; i < section.entries.size(); ++i) writer.row(cells_for(section.entries[i], i + 1, section.columns));
  }
  return out;
}

}  // namespace asg
