// The run registry: one SQLite file that records every run, its provenance, metric history, final
// results and artifacts, and renders the benchmark leaderboard.
//
// Concurrency: WAL journal, a busy timeout, and short write transactions (BEGIN IMMEDIATE), so several
// `asg run` processes can share one registry (tested with 32 writer processes opening a new file at once,
// and with a writer SIGKILLed inside a transaction). Each Registry object holds one connection; use it
// from one thread at a time, and open it after fork(), never before.
//
// Schema evolution: PRAGMA user_version holds the schema version. Opening an older file migrates it
// forward under an exclusive write transaction; opening a file written by a newer ASG Lab is refused.
//
// Lifecycle: QUEUED -> RUNNING -> FINISHED | FAILED | KILLED. Terminal states are final; a run keeps
// whatever metric history it logged before failing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace asg {

enum class RunStatus { Queued, Running, Finished, Failed, Killed };
const char* status_name(RunStatus status);
RunStatus parse_status(const std::string& name);

struct NewRun {
  std::string name;
  std::string experiment_path;
  std::string benchmark;  // "" = on no leaderboard
  std::string rank_by;    // metric key that orders the leaderboard ("" = first metric)
  std::string config_hash;
  std::string config_text;
  int64_t seed = 0;
  std::string git_commit;
  bool git_dirty = false;
  // The run's environment (device, threads, host, library versions). Recorded to explain a number, never
  // hashed: the same method under the same protocol on another machine is still comparable.
  std::string host_json;
  std::string run_dir;
  std::optional<std::string> parent_run_id;
  int64_t attempt = 1;
  // Schema 3. What was trained and what was measured, as hashes the core computes; the registry stores
  // them opaquely and only compares them for equality. Runs recorded before schema 3 have them empty.
  std::string method_hash;
  std::string protocol_hash;
  // The canonical JSON object protocol_hash was computed from (flat or nested), so that the leaderboard
  // can name the fields in which two protocols differ. "" when not recorded.
  std::string protocol_json;
  // For a resumed attempt, the checkpoint it started from (a path, opaque here); nothing for a fresh run.
  std::optional<std::string> resumed_from;
};

struct RunRecord : NewRun {
  std::string id;
  RunStatus status = RunStatus::Queued;
  int64_t created_ms = 0;
  std::optional<int64_t> started_ms, ended_ms;
  std::string error;
};

struct PluginUse {
  std::string slot;  // "backbone", "metrics[0]"
  std::string kind;
  std::string name;
  std::string version;
  std::string library;
  std::string library_sha256;
};

struct MetricPoint {
  std::string key;
  int64_t step = 0;
  double value = 0;
  int64_t time_ms = 0;
};

struct ResultValue {
  std::string key;
  double value = 0;
  bool higher_is_better = true;
};

struct Artifact {
  std::string path;  // relative to the run directory
  std::string sha256;
  int64_t bytes = 0;
};

// Schema 4. A FINISHED run evaluated again under a benchmark's protocol without retraining (asg eval RUN
// --benchmark NAME): its own protocol and values, next to the run's own results, which it never changes. A set
// is RUNNING while it is computed and FINISHED or FAILED after; only FINISHED sets reach the leaderboard.
struct NewResultSet {
  std::string run_id;
  std::string benchmark;
  std::string rank_by;
  std::string protocol_hash;
  std::string protocol_json;  // a JSON object, as NewRun's
  std::string config_text;    // the resolved experiment the evaluation ran
  std::string git_commit;
  std::string host_json;
  std::string output_dir;  // where its samples and log are, relative to the run's folder
};

struct ResultSet : NewResultSet {
  int64_t id = 0;
  RunStatus status = RunStatus::Running;
  int64_t created_ms = 0;
  std::optional<int64_t> ended_ms;
  std::string error;
};

int64_t now_ms();

// A RUNNING run that `Registry::collect_dead_runs` found dead and marked KILLED.
struct CollectedRun {
  std::string id;
  std::string name;
  std::string reason;
};

class Registry {
 public:
  static constexpr int kSchemaVersion = 4;

  // Opens (creating if needed) and migrates. asg::Error(Registry) naming the file on failure.
  explicit Registry(const std::filesystem::path& path);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  const std::filesystem::path& path() const { return path_; }
  int schema_version() const;

  std::string create_run(const NewRun& run);  // returns the new run id; status QUEUED
  // Also records which process runs it (host, pid and the pid's start time) and a first heartbeat.
  void mark_running(const std::string& run_id);
  // A sign of life of a RUNNING run (log_metrics gives one with every flush).
  void heartbeat(const std::string& run_id);
  // Marks KILLED every RUNNING run whose process is gone: on this host by its pid and the pid's start
  // time (a run killed a second ago is found at once, a reused pid is not mistaken for it); on other
  // hosts, and for rows written before version 2 recorded the process, when its last heartbeat (or
  // start) is older than stale_after_ms. Returns what it marked, with the reason also stored as the
  // run's error.
  std::vector<CollectedRun> collect_dead_runs(int64_t stale_after_ms);
  // FINISHED, FAILED or KILLED; `error` is the failure message (empty for FINISHED).
  void mark_ended(const std::string& run_id, RunStatus status, const std::string& error = "");

  void record_plugins(const std::string& run_id, const std::vector<PluginUse>& plugins);
  void log_metrics(const std::string& run_id, const std::vector<MetricPoint>& points);  // one transaction
  void set_results(const std::string& run_id, const std::vector<ResultValue>& results);
  void add_artifact(const std::string& run_id, const Artifact& artifact);

  std::optional<RunRecord> find_run(const std::string& run_id) const;
  // Newest first; `benchmark` empty = all.
  std::vector<RunRecord> list_runs(const std::string& benchmark = "", std::optional<RunStatus> status = {}) const;
  std::vector<PluginUse> plugins(const std::string& run_id) const;
  std::vector<MetricPoint> metric_history(const std::string& run_id, const std::string& key = "") const;
  std::vector<ResultValue> results(const std::string& run_id) const;  // in recorded order
  std::vector<Artifact> artifacts(const std::string& run_id) const;

  // Result sets (schema 4). begin_result_set refuses a run that is not FINISHED; end_result_set records the
  // values and the terminal status (FINISHED, FAILED or KILLED) in one transaction.
  int64_t begin_result_set(const NewResultSet& set);
  void end_result_set(int64_t set_id, RunStatus status, const std::vector<ResultValue>& results, const std::string& error = "");
  // Newest first; empty run_id / benchmark = all.
  std::vector<ResultSet> result_sets(const std::string& run_id = "", const std::string& benchmark = "") const;
  std::vector<ResultValue> result_set_values(int64_t set_id) const;

 private:
  void exec(const std::string& sql) const;
  void enable_wal();
  void write_transaction(const std::function<void()>& body);
  void migrate();
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  // The statements of log_metrics, prepared on its first call and reused: a training run calls it every
  // log_every steps, and preparing costs as much as inserting a few rows.
  struct MetricStatements;
  std::unique_ptr<MetricStatements> metric_statements_;
};

enum class LeaderboardFormat { Markdown, Csv };

// One row per FINISHED run of the benchmark, best first by the benchmark's rank metric, ranked only among runs
// measured under the same protocol (protocol_hash). Markdown: the protocol of the newest run that recorded one
// comes first, in the table format of a single-protocol leaderboard; every other protocol follows in its own
// section, ranked on its own, whose title names the fields (dotted keys of protocol_json) that differ from the
// first; runs recorded before schema 3 form a last section of their own. CSV: one table, a `protocol` column
// (full hash) last, the rank restarting in each protocol.
// asg::Error(Config) if the benchmark has no finished runs (listing the benchmarks that do).
std::string render_leaderboard(const Registry& registry, const std::string& benchmark, LeaderboardFormat format);

// Runs of the benchmark grouped by run name and protocol (an ablation's arms run over several seeds): one row
// per group with the number of runs, their seeds, the mean wall time, and for every metric "mean ± std"
// (sample standard deviation, n - 1; no ± for a single run). Rows are ordered by protocol (as on the
// leaderboard), then by the mean of the rank metric. When the groups span more than one protocol a
// `protocol` column follows the name (short hash in Markdown, full in CSV); with one it is left out.
// `names`, if not empty, selects the run names and their order. asg::Error(Config) if nothing matches.
std::string render_group_summary(const Registry& registry, const std::string& benchmark, const std::vector<std::string>& names,
                                 LeaderboardFormat format);

}  // namespace asg
