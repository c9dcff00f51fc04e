// Reports rendered from the registry: the benchmark leaderboard (Markdown, CSV, JSON, LaTeX, HTML), `asg compare`
// and the per-arm group summary. Read-only over asg/registry.h.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "asg/registry.h"

namespace asg {

enum class LeaderboardFormat { Markdown, Csv, Json, Latex, Html };
// "md", "csv", "json", "latex", "html"; asg::Error(Config) listing them otherwise.
LeaderboardFormat parse_leaderboard_format(const std::string& name);

// What a leaderboard shows.
struct LeaderboardOptions {
  std::string benchmark;
  // Rows: by default one per set of runs that differ only by seed (their resolved configs equal but for
  // runtime.seed, name and description), with mean ± sample std and n; individual_runs: one row per run;
  // group_by: one row per value of that config key (an ablation view, e.g. temporal.plugin).
  bool individual_runs = false;
  std::string group_by;
  std::vector<std::string> where;  // RunFilter terms (asg/run_query.h), all of which a run must match
  // HTML only. Samples are the newest run's recorded sample files, read from <runs_dir>/<run id>/<artifact path>:
  // embedded as data: URIs when media_url_prefix is "" (a self-contained page), else linked as
  // <media_url_prefix>/<run id>/<artifact path> (asg serve). Samples and loss curves are drawn for the first
  // `html_media_rows` rows of each protocol; the rest show their numbers and provenance only.
  std::filesystem::path runs_dir = "runs";
  std::string media_url_prefix;
  std::string run_url_prefix;  // when set, run ids link to <run_url_prefix>/<run id> (asg serve's run pages)
  size_t samples_per_row = 3;
  size_t html_media_rows = 100;
};

// The benchmark's FINISHED runs (and the FINISHED result sets `asg eval` added to them), ranked by the benchmark's
// rank metric only among runs measured under the same protocol (protocol_hash); reproductions and deleted runs
// are left out. The protocol of the newest run that recorded one comes first; every other protocol follows in
// its own section, ranked on its own, whose title names the fields (dotted keys of protocol_json) in which it
// differs from the first; runs recorded before schema 3 form a last section of their own.
//   Markdown: a table per protocol. CSV: one table, a `protocol` column (full hash) last, the rank restarting in
//   each protocol; grouped rows give each metric a KEY and a KEY_std column. JSON: every section, row and run id,
//   with each metric's mean, std, n and values. LaTeX: a booktabs table per protocol, the best mean of every
//   metric in bold, ↑/↓ per metric (needs \usepackage{booktabs}). HTML: one page that needs no network:
//   sortable columns, each row's samples playing inline, its newest run's training loss as inline SVG, and its
//   provenance (run ids, commit, config hash, plugin versions, protocol); every value escaped.
// asg::Error(Config) if no finished run of the benchmark matches (listing the benchmarks that have some), or a
// --where/--group-by key is unknown.
std::string render_leaderboard(const Registry& registry, const LeaderboardOptions& options, LeaderboardFormat format);
// One row per run (LeaderboardOptions::individual_runs).
std::string render_leaderboard(const Registry& registry, const std::string& benchmark, LeaderboardFormat format);

// `asg compare`: what differs between runs (two or more): config keys, plugin versions and library hashes, host and
// library versions, and results with their deltas against the first run. Keys equal in every run are left out.
// Markdown or JSON (other formats: asg::Error(Config)).
std::string render_comparison(const Registry& registry, const std::vector<RunRecord>& runs, LeaderboardFormat format);

// Runs of the benchmark grouped by run name and protocol (an ablation's arms run over several seeds): one row
// per group with the number of runs, their seeds, the mean wall time, and for every metric "mean ± std"
// (sample standard deviation, n - 1; no ± for a single run). Rows are ordered by protocol (as on the
// leaderboard), then by the mean of the rank metric. When the groups span more than one protocol a
// `protocol` column follows the name (short hash in Markdown, full in CSV); with one it is left out.
// `names`, if not empty, selects the run names and their order. asg::Error(Config) if nothing matches.
std::string render_group_summary(const Registry& registry, const std::string& benchmark, const std::vector<std::string>& names,
                                 LeaderboardFormat format);

}  // namespace asg
