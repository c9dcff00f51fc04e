// The run registry's store: one SQLite file that records every run, its provenance, metric history, final
// results and artifacts. What is rendered from it (leaderboards, comparisons) is asg/leaderboard.h.
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
//
// Roles (schema 5): a run is an experiment run, a sweep (the parent of its points, which are runs), or a
// reproduction (a rerun of its parent's stored config, which it judges and never joins on a leaderboard).
// A resumed attempt is a run whose parent is the attempt it continues.
//
// Deletion is soft: `mark_deleted` hides a run from listings and leaderboards and keeps every row; only
// `find_run` and `find_runs_by_prefix` still see it.
//
// Moving runs between registries: `export_runs` writes the runs, whole, into a new registry file with a
// sha256 digest per run; `import_runs` checks every digest and the file's schema first and copies, in one
// transaction, only the runs it does not have, so importing a file twice adds nothing the second time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

struct sqlite3;

namespace asg {

enum class RunStatus { Queued, Running, Finished, Failed, Killed };
const char* status_name(RunStatus status);
RunStatus parse_status(const std::string& name);

enum class RunRole { Run, Sweep, Reproduction };
const char* run_role_name(RunRole role);
RunRole parse_run_role(const std::string& name);

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
  // Schema 5. A sweep's config_text is its sweep file; a reproduction's parent is the run it reruns.
  RunRole role = RunRole::Run;
};

struct RunRecord : NewRun {
  std::string id;
  RunStatus status = RunStatus::Queued;
  int64_t created_ms = 0;
  std::optional<int64_t> started_ms, ended_ms;
  std::string error;
  std::optional<int64_t> deleted_ms;  // soft-deleted (asg runs rm) at this time
  // Schema 5: sha256 of the config without runtime.seed, name and description (seedless_config_hash), so that
  // the leaderboard groups the seeds of one config without parsing every config. '' for older rows.
  std::string seedless_hash;
};

// Which runs list_runs returns. Soft-deleted runs only when asked for.
struct RunQuery {
  std::string benchmark;  // "" = every benchmark
  std::optional<RunStatus> status;
  std::optional<std::string> parent_run_id;
  std::optional<RunRole> role;
  std::string config_hash;  // "" = any
  bool include_deleted = false;
  bool with_large_texts = true;  // false: config_text and host_json left empty (listing 100k runs reads less)
  size_t limit = 0;              // 0 = all
};

// What import_runs did, per run id.
struct ImportReport {
  std::vector<std::string> imported;
  std::vector<std::string> already_present;  // same id and the same digest here: nothing to do
  // Same id here with other contents (e.g. exported while it was RUNNING and finished since): kept as it is here.
  std::vector<std::string> differing;
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

// A run and its own results (Registry::ranked_runs).
struct RunResults {
  RunRecord run;
  std::vector<ResultValue> results;
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
  static constexpr int kSchemaVersion = 6;

  enum class OpenMode {
    ReadWrite,  // creates the file if needed and migrates it to this schema
    ReadOnly,   // never writes: the file must exist at this schema version (asg serve reads this way)
  };
  // Opens (in ReadWrite: creating if needed, and migrating). asg::Error(Registry) naming the file on failure.
  explicit Registry(const std::filesystem::path& path, OpenMode mode = OpenMode::ReadWrite);
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
  // The run's resolved config ("" for no such run): find_run's config_text without reading the rest of the row.
  std::string config_text(const std::string& run_id) const;
  // Runs whose id starts with `prefix` (deleted ones too), newest first; at most `limit`.
  std::vector<RunRecord> find_runs_by_prefix(const std::string& prefix, size_t limit = 50) const;
  // The one run an id or an unambiguous id prefix names (as git abbreviates commits). asg::Error(Config) otherwise:
  // an unknown id names the registry and the newest runs; an ambiguous prefix lists the runs it matches.
  RunRecord resolve_run(const std::string& id_or_prefix) const;
  // Newest first; `benchmark` empty = all; deleted runs left out.
  std::vector<RunRecord> list_runs(const std::string& benchmark = "", std::optional<RunStatus> status = {}) const;
  std::vector<RunRecord> list_runs(const RunQuery& query) const;
  // Soft delete (asg runs rm). A RUNNING or QUEUED run is refused: stop it first.
  void mark_deleted(const std::string& run_id);
  std::vector<PluginUse> plugins(const std::string& run_id) const;
  std::vector<MetricPoint> metric_history(const std::string& run_id, const std::string& key = "") const;
  std::vector<ResultValue> results(const std::string& run_id) const;  // in recorded order
  // What a leaderboard ranks: the FINISHED runs of a benchmark ("" = all) that are experiment runs and not deleted,
  // newest first, each with its own results in recorded order, in one read of the runs table (schema 6 keeps each
  // run's results packed beside it). The runs come without their config, environment and protocol JSON
  // (protocol_json_of has that once per protocol).
  std::vector<RunResults> ranked_runs(const std::string& benchmark) const;
  // The protocol JSON that the newest run of `benchmark` under `protocol_hash` recorded ("" if none did).
  std::string protocol_json_of(const std::string& benchmark, const std::string& protocol_hash) const;
  // Rewrites every run's packed results from the results table, in one transaction: what the 5 -> 6 migration does,
  // for a tool that wrote the results table with plain SQL (the registry benchmark does, to write 100k runs fast).
  void repack_all_results();
  std::vector<Artifact> artifacts(const std::string& run_id) const;

  // Result sets (schema 4). begin_result_set refuses a run that is not FINISHED; end_result_set records the
  // values and the terminal status (FINISHED, FAILED or KILLED) in one transaction.
  int64_t begin_result_set(const NewResultSet& set);
  void end_result_set(int64_t set_id, RunStatus status, const std::vector<ResultValue>& results, const std::string& error = "");
  // Newest first; empty run_id / benchmark = all.
  std::vector<ResultSet> result_sets(const std::string& run_id = "", const std::string& benchmark = "") const;
  std::vector<ResultValue> result_set_values(int64_t set_id) const;

  // sha256 over everything recorded about a run (its row, plugins, metric history, results, artifacts, result
  // sets), in a fixed order: equal digests mean equal records, whichever registry holds them.
  std::string run_digest(const std::string& run_id) const;
  // Writes the runs into `out`, a new registry file (refused if it exists), with each run's digest. Every id must
  // exist here. A run's parent (its sweep, the run it reproduces, the attempt it resumes) goes with it, and that
  // parent's parent, so that the file holds no reference it cannot resolve. Returns the ids written, parents first.
  std::vector<std::string> export_runs(const std::vector<std::string>& run_ids, const std::filesystem::path& out) const;
  // Copies the runs of `from` (an export, or any registry file) that this registry lacks. Refused with nothing
  // changed (asg::Error(Registry)) when `from` was written by a newer schema, is not a registry, or holds a
  // run whose digest does not match the one the export recorded.
  ImportReport import_runs(const std::filesystem::path& from);

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

}  // namespace asg
