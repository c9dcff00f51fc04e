// The benchmark leaderboard: rows (runs, seeds of one config, or values of one config key) ranked per protocol, in
// Markdown, CSV, JSON, LaTeX and HTML.
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
#include "asg/leaderboard.h"
#include "asg/registry.h"
#include "asg/run_query.h"
#include "leaderboard_rows.h"
#include "statistics.h"

namespace asg {

using namespace reports;

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

namespace {

using Columns = std::vector<std::pair<std::string, bool>>;

// The benchmark's finished rows that match --where; asg::Error(Config) when none does, or a key is unknown.
std::vector<Row> selected_rows(const Registry& registry, const LeaderboardOptions& options, RunSelector& selector,
                               RunSelector& group_by) {
  std::vector<Row> rows = finished_rows(registry, options.benchmark);
  if (rows.empty()) throw_no_runs(registry, options.benchmark);
  auto run_at = [&](size_t i) -> const RunRecord& { return rows[i].run; };
  selector.check_keys(rows.size(), run_at);
  group_by.check_keys(rows.size(), run_at);
  if (!selector.empty()) {
    std::erase_if(rows, [&](const Row& r) { return !selector.matches(r.run); });
    if (rows.empty())
      throw config_error(fmt::format("{}: no finished run of benchmark '{}' matches --where {}", registry.path().string(),
                                     options.benchmark, selector.describe()));
  }
  return rows;
}

// One section per protocol, its entries made and ranked; every section after the first names how its protocol differs.
std::vector<Section> make_sections(const Registry& registry, std::vector<ProtocolGroup>& groups, Grouping grouping,
                                   const RunSelector& group_by, const LeaderboardOptions& options, const Columns& all_columns,
                                   LeaderboardFormat format) {
  std::vector<Section> sections;
  for (size_t g = 0; g < groups.size(); ++g) {
    Section section;
    section.group = &groups[g];
    section.columns = metric_columns(groups[g].rows);
    section.ranking = ranking_of(groups[g].rows, section.columns);
    const Columns& columns = format == LeaderboardFormat::Csv ? all_columns : section.columns;
    section.entries = make_entries(registry, groups[g].rows, grouping, group_by, options.group_by, columns);
    rank_entries(section.entries, section.ranking, columns);
    if (g > 0 && !groups[g].hash.empty()) section.title_detail = protocol_difference(groups.front(), groups[g]);
    sections.push_back(std::move(section));
  }
  return sections;
}

std::string render_json(const std::vector<Section>& sections, Grouping grouping, const LeaderboardOptions& options, bool filtered) {
  nlohmann::json j = {{"benchmark", options.benchmark},
                      {"rows", grouping == Grouping::Runs ? "runs" : grouping == Grouping::Seeds ? "seeds" : "group_by"}};
  if (grouping == Grouping::Key) j["group_by"] = options.group_by;
  if (filtered) j["where"] = options.where;
  j["sections"] = nlohmann::json::array();
  for (size_t i = 0; i < sections.size(); ++i) j["sections"].push_back(section_json(sections[i], grouping, i));
  return j.dump(2) + "\n";
}

std::string render_latex(const std::vector<Section>& sections, Grouping grouping, const LeaderboardOptions& options) {
  std::string out = fmt::format("% asg leaderboard --benchmark {} --format latex; needs \\usepackage{{booktabs}}\n", options.benchmark);
  for (size_t i = 0; i < sections.size(); ++i) {
    if (i) out += "\n";
    out += render_latex_section(sections[i], options.benchmark, grouping, options.group_by, i);
  }
  return out;
}

// The header and the cells of the Markdown and CSV tables, for one grouping of rows.
struct TableLayout {
  Grouping grouping;
  LeaderboardFormat format;
  const std::string& group_by;

  std::vector<std::string> header(const Columns& columns) const {
    if (grouping == Grouping::Runs) return leaderboard_header(columns, format);
    std::vector<std::string> out = {"rank"};
    if (grouping == Grouping::Key) out.push_back(group_by);
    else out.insert(out.end(), {"run", "name"});
    out.insert(out.end(), {"n", "seeds"});
    for (const auto& [key, higher] : columns) {
      if (format == LeaderboardFormat::Markdown) {
        out.push_back(fmt::format("{} {}", key, higher ? "↑" : "↓"));
      } else {
        out.push_back(key);
        out.push_back(key + "_std");
      }
    }
    if (grouping == Grouping::Seeds) out.insert(out.end(), {"experiment", "config", "commit"});
    return out;
  }

  std::vector<std::string> cells(const Entry& e, size_t rank, const Columns& columns) const {
    const Row& newest = *e.rows.front();
    std::vector<std::string> out = {std::to_string(rank)};
    if (grouping == Grouping::Key) out.push_back(e.label);
    else out.insert(out.end(), {run_label(newest), grouping == Grouping::Runs ? newest.run.name : e.label});
    if (grouping != Grouping::Runs) out.insert(out.end(), {std::to_string(e.rows.size()), seeds_text(e)});
    for (size_t c = 0; c < columns.size(); ++c) {
      const Stat& s = e.stats[c];
      if (format == LeaderboardFormat::Markdown) {
        out.push_back(stat_cell(s));
      } else if (grouping == Grouping::Runs) {
        out.push_back(s.n == 0 ? "" : format_metric(s.mean));
      } else {
        out.push_back(number_text(s.mean));
        out.push_back(number_text(s.std));
      }
    }
    if (grouping != Grouping::Key) {
      out.push_back(newest.run.experiment_path);
      out.push_back(format == LeaderboardFormat::Markdown ? newest.run.config_hash.substr(0, 12) : newest.run.config_hash);
      out.push_back(commit_label(newest.run, format));
    }
    return out;
  }

  size_t numeric_from() const { return grouping == Grouping::Runs ? 3 : grouping == Grouping::Key ? 4 : 5; }
};

// CSV: one table for machines, the full protocol hash last, the rank restarting in each protocol (ranks across
// protocols would compare incomparable numbers).
std::string render_csv(const std::vector<Section>& sections, const Columns& all_columns, const TableLayout& layout) {
  auto header = layout.header(all_columns);
  header.push_back("protocol");
  std::string out;
  TableWriter writer(out, LeaderboardFormat::Csv);
  writer.header(header, layout.numeric_from(), all_columns.size(), "");
  for (const auto& section : sections)
    for (size_t i = 0; i < section.entries.size(); ++i) {
      auto cells = layout.cells(section.entries[i], i + 1, all_columns);
      cells.push_back(section.group->hash);
      writer.row(cells);
    }
  return out;
}

// Markdown: a titled table per protocol.
std::string render_markdown(const std::vector<Section>& sections, const TableLayout& layout, const std::string& benchmark) {
  std::string out;
  TableWriter writer(out, LeaderboardFormat::Markdown);
  for (size_t g = 0; g < sections.size(); ++g) {
    const Section& section = sections[g];
    if (g > 0) out += "\n";
    writer.header(layout.header(section.columns), layout.numeric_from(), section.columns.size(),
                  section_title(section, benchmark, g, layout.grouping, section.group->rows.size()));
    for (size_t i = 0; i < section.entries.size(); ++i) writer.row(layout.cells(section.entries[i], i + 1, section.columns));
  }
  return out;
}

}  // namespace

std::string render_leaderboard(const Registry& registry, const LeaderboardOptions& options, LeaderboardFormat format) {
  if (format == LeaderboardFormat::Html) return render_leaderboard_html(registry, options);
  if (options.individual_runs && !options.group_by.empty())
    throw config_error("--runs and --group-by ask for different rows (one per run, one per value of a key); give one of them");
  RunSelector selector(registry, parse_run_filters(options.where));
  // --group-by's key is checked as a --where key would be, and read through a selector of its own (once per config).
  RunSelector group_by(registry, options.group_by.empty() ? std::vector<RunFilter>{}
                                                          : std::vector<RunFilter>{{options.group_by, "", false, "--group-by " + options.group_by}});
  std::vector<Row> rows = selected_rows(registry, options, selector, group_by);
  const Grouping grouping = options.individual_runs ? Grouping::Runs : options.group_by.empty() ? Grouping::Seeds : Grouping::Key;
  const Columns all_columns = metric_columns(rows);
  auto groups = group_by_protocol(registry, options.benchmark, std::move(rows));
  const std::vector<Section> sections = make_sections(registry, groups, grouping, group_by, options, all_columns, format);
  if (format == LeaderboardFormat::Json) return render_json(sections, grouping, options, !selector.empty());
  if (format == LeaderboardFormat::Latex) return render_latex(sections, grouping, options);
  const TableLayout layout{grouping, format, options.group_by};
  if (format == LeaderboardFormat::Csv) return render_csv(sections, all_columns, layout);
  return render_markdown(sections, layout, options.benchmark);
}

}  // namespace asg
