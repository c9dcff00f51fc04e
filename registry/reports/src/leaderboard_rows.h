// What the leaderboard and the group summary share: a run's row of results, the finished rows of a benchmark,
// its metric columns, tables written row by row, and the grouping of rows by protocol. Private to the reports.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "asg/leaderboard.h"
#include "asg/registry.h"

namespace asg::reports {

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

struct ProtocolGroup {
  std::string hash;  // "" = recorded before schema 3
  std::string json;  // the newest recorded protocol_json of the group ("" if none)
  std::vector<Row> rows;  // newest first
};

std::string short_hash(const std::string& hash);

std::string format_metric(double v);

std::string csv_field(const std::string& s);

// The metric columns of a set of runs: keys in the order the newest run recorded them, then keys only
// older runs have; and for each whether higher is better.
std::vector<std::pair<std::string, bool>> metric_columns(const std::vector<Row>& rows);

// Newest first: the benchmark's finished runs, and the finished result sets that `asg eval` added under the
// benchmark to finished runs (the newest set per run and protocol; none where the run's own results are already
// under that protocol). A set counts as new as its evaluation.
// Runs are read with their results packed beside them and without their config and protocol texts, in one query, so
// that a benchmark with 100k runs renders in under a second; what needs a config (--where on config keys) reads it
// then, and each protocol's JSON is read once (group_by_protocol).
std::vector<Row> finished_rows(const Registry& registry, const std::string& benchmark);

[[noreturn]] void throw_no_runs(const Registry& registry, const std::string& benchmark);

std::string render_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& table,
                         size_t first_numeric, size_t numeric_count, LeaderboardFormat format, const std::string& title);

// Groups rows (newest first) by protocol. The first group is the protocol of the newest run that recorded
// one: the protocol that the benchmark is measured under now. Other recorded protocols follow, newest
// first; runs without a protocol come last (or alone, in a registry that has only those).
std::vector<ProtocolGroup> group_by_protocol(const Registry& registry, const std::string& benchmark, std::vector<Row> rows);

// A JSON object's leaves by dotted key ({"eval": {"num_samples": 32}} -> {"eval.num_samples": "32"}), arrays as
// compact JSON, strings quoted (`strings_quoted`) or as they are; nothing for text that is not a JSON object.
std::map<std::string, std::string> flat_json(const std::string& json, bool strings_quoted);

// "eval.num_samples = 64 (above: 32), metrics.fid.version = \"3\" (above: \"2\")": the fields of `other`
// that differ from `ranked`, by dotted key. At most kShown fields are named.
std::string protocol_difference(const ProtocolGroup& ranked, const ProtocolGroup& other);

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


}  // namespace asg::reports
