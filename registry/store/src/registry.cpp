// The registry store: opening and migrating the file, the run lifecycle, metric history, results and queries.
#include "asg/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <fstream>
#include <map>
#include <unordered_map>
#include <optional>
#include <set>
#include <sstream>
#include <functional>
#include <cmath>
#include <random>
#include <thread>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/run_query.h"
#include "packed_results.h"
#include "run_row.h"
#include "schema.h"
#include "sqlite_statement.h"

namespace asg {

using namespace registry_store;

namespace {


std::string this_host() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return host;
}

// When process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat), or nothing if no
// such process exists. Together with the pid it names a process uniquely: pids are reused, start times
// are not.
std::optional<int64_t> process_start(int64_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  const auto close = line.rfind(')');  // the command name may itself contain spaces and parentheses
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i)
    if (i == 22) return std::stoll(field);
  return std::nullopt;
}

std::string new_run_id() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::random_device rd;
  return fmt::format("{:04}{:02}{:02}-{:02}{:02}{:02}-{:06x}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, rd() & 0xffffff);
}

// Result values (a run's, or a result set's) under an owner id bound as ?1: (?1, key, value, higher_is_better,
// ordinal), NaN and Inf stored as NULL; and read back in their order from `SELECT key, value, higher_is_better`.
template <typename Id>
void insert_values(Statement& s, const Id& owner, const std::vector<ResultValue>& results) {
  int64_t ordinal = 0;
  for (const auto& r : results) {
    s.bind(1, owner).bind(2, r.key).bind(4, static_cast<int64_t>(r.higher_is_better)).bind(5, ordinal++);
    if (std::isfinite(r.value)) s.bind(3, r.value); else s.bind_null(3);
    s.step();
    s.reset();
  }
}

}  // namespace

const char* status_name(RunStatus status) {
  switch (status) {
    case RunStatus::Queued: return "QUEUED";
    case RunStatus::Running: return "RUNNING";
    case RunStatus::Finished: return "FINISHED";
    case RunStatus::Failed: return "FAILED";
    case RunStatus::Killed: return "KILLED";
  }
  return "?";
}

RunStatus parse_status(const std::string& name) {
  for (auto s : {RunStatus::Queued, RunStatus::Running, RunStatus::Finished, RunStatus::Failed, RunStatus::Killed})
    if (name == status_name(s)) return s;
  throw registry_error("unknown run status '" + name + "' (valid: QUEUED, RUNNING, FINISHED, FAILED, KILLED)");
}

const char* run_role_name(RunRole role) {
  switch (role) {
    case RunRole::Run: return "run";
    case RunRole::Sweep: return "sweep";
    case RunRole::Reproduction: return "reproduction";
  }
  return "?";
}

RunRole parse_run_role(const std::string& name) {
  for (auto r : {RunRole::Run, RunRole::Sweep, RunRole::Reproduction})
    if (name == run_role_name(r)) return r;
  throw registry_error("unknown run role '" + name + "' (valid: run, sweep, reproduction)");
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Registry::Registry(const std::filesystem::path& path, OpenMode mode) : path_(path) {
  if (mode == OpenMode::ReadOnly) {
    if (!std::filesystem::is_regular_file(path)) throw registry_error(fmt::format("{}: no registry here", path.string()));
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw registry_error(fmt::format("{}: cannot open registry: {}", path.string(), msg));
    }
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    int version = 0;
    try {
      version = schema_version();
    } catch (...) {
      sqlite3_close(db_);
      db_ = nullptr;
      throw;
    }
    if (version != kSchemaVersion) {
      sqlite3_close(db_);
      db_ = nullptr;
      throw registry_error(fmt::format("{}: registry schema {}, but read-only access needs schema {}; {}", path.string(), version,
                                       kSchemaVersion,
                                       version > kSchemaVersion ? "it was written by a newer ASG Lab"
                                                                : "open it once with a command that writes (e.g. asg runs gc) to migrate it"));
    }
    return;
  }
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw registry_error(fmt::format("{}: cannot open registry: {}", path.string(), msg));
  }
  try {
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    exec("PRAGMA foreign_keys = ON");
    enable_wal();
    exec("PRAGMA synchronous = NORMAL");
    migrate();
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

struct Registry::MetricStatements {
  MetricStatements(sqlite3* db, const std::filesystem::path& file)
      : heartbeat(db, "UPDATE runs SET heartbeat_ms = ?2 WHERE id = ?1 AND status = 'RUNNING'", file),
        insert(db, "INSERT INTO metric_history VALUES (?1, ?2, ?3, ?4, ?5)", file) {}
  Statement heartbeat;
  Statement insert;
};

Registry::~Registry() {
  metric_statements_.reset();  // statements are finalized before their connection closes
  sqlite3_close(db_);
}

void Registry::exec(const std::string& sql) const {
  std::string error;
  if (exec_status(db_, sql, error) != SQLITE_OK) throw_sql_error(path_, error);
}

void Registry::enable_wal() {
  // WAL lets readers (a leaderboard) run beside a writer (a training run). Not valid on network file
  // systems; SQLite then keeps the old journal mode, which is still correct, only less concurrent.
  //
  // Switching a file into WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY at once there instead
  // of calling the busy handler. That is exactly what happens when a sweep starts 32 jobs against a new
  // registry: all open it at the same moment and all but one would fail with "database is locked". So retry
  // with a growing, jittered sleep for as long as the busy timeout would have waited. The mode is stored in
  // the file, so once one process has switched it the others' statement is a no-op and the loop ends.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  std::minstd_rand jitter(static_cast<unsigned>(getpid()));
  std::string error;
  for (int delay_ms = 1;; delay_ms = std::min(2 * delay_ms, 64)) {
    const int rc = exec_status(db_, "PRAGMA journal_mode = WAL", error);
    if (rc == SQLITE_OK) return;
    if (rc != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) throw_sql_error(path_, error);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms / 2 + jitter() % delay_ms));
  }
}

int Registry::schema_version() const {
  Statement s(db_, "PRAGMA user_version", path_);
  s.step();
  return static_cast<int>(s.integer(0));
}

void Registry::migrate() {
  // Fast path without a write lock.
  int version = schema_version();
  if (version > kSchemaVersion) {
    throw registry_error(fmt::format("{}: registry schema version {} is newer than this asg supports ({}); it was "
                                     "written by a newer ASG Lab. Use that version, or --registry another file.",
                                     path_.string(), version, kSchemaVersion));
  }
  if (version == kSchemaVersion) return;
  // Re-read under the write lock: a concurrent first open may have migrated meanwhile.
  write_transaction([&] {
    version = schema_version();
    for (int v = version; v < kSchemaVersion; ++v) exec(schema_migrations()[static_cast<size_t>(v)]);
    if (version > 0 && version < 5) {
      // 4 -> 5 in C++: the seedless hash needs the TOML parser, which SQL does not have.
      std::vector<std::pair<std::string, std::string>> rows;
      {
        Statement read(db_, "SELECT id, config_text FROM runs", path_);
        while (read.step()) rows.emplace_back(read.text(0), read.text(1));
      }
      Statement write(db_, "UPDATE runs SET seedless_hash = ?2 WHERE id = ?1", path_);
      for (const auto& [id, config] : rows) {
        write.bind(1, id).bind(2, seedless_config_hash(config));
        write.step();
        write.reset();
      }
    }
    if (version > 0 && version < 6) repack_every_run(db_, path_);  // 5 -> 6: pack every run's results beside it
    if (version < kSchemaVersion) exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
  });
}

std::string Registry::create_run(const NewRun& run) {
  // The leaderboard parses protocol_json to say how two protocols differ; refuse what it could not read
  // now, while the caller that built it is on the stack, rather than at render time.
  if (!run.protocol_json.empty()) {
    const auto protocol = nlohmann::json::parse(run.protocol_json, nullptr, /*allow_exceptions=*/false);
    if (!protocol.is_object())  // a parse error is "discarded", which is not an object either
      throw internal_error(fmt::format("run '{}': protocol_json must be a JSON object, got: {}", run.name, run.protocol_json));
  }
  std::string id = new_run_id();
  Statement s(db_,
              "INSERT INTO runs (id, name, experiment_path, benchmark, rank_by, status, created_ms, config_hash, "
              "config_text, seed, git_commit, git_dirty, host_json, run_dir, parent_run_id, attempt, method_hash, "
              "protocol_hash, protocol_json, resumed_from, role, seedless_hash) "
              "VALUES (?1, ?2, ?3, ?4, ?5, 'QUEUED', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
              path_);
  s.bind(1, id).bind(2, run.name).bind(3, run.experiment_path).bind(4, run.benchmark).bind(5, run.rank_by);
  s.bind(6, now_ms()).bind(7, run.config_hash).bind(8, std::string()).bind(9, run.seed).bind(10, run.git_commit);
  s.bind(11, static_cast<int64_t>(run.git_dirty)).bind(12, run.host_json).bind(13, run.run_dir);
  if (run.parent_run_id) s.bind(14, *run.parent_run_id); else s.bind_null(14);
  s.bind(15, run.attempt).bind(16, run.method_hash).bind(17, run.protocol_hash).bind(18, run.protocol_json);
  if (run.resumed_from) s.bind(19, *run.resumed_from); else s.bind_null(19);
  s.bind(20, std::string(run_role_name(run.role))).bind(21, seedless_config_hash(run.config_text));
  Statement config(db_, "INSERT INTO run_configs VALUES (?1, ?2)", path_);
  config.bind(1, id).bind(2, run.config_text);
  write_transaction([&] {
    s.step();
    config.step();
  });
  return id;
}

void Registry::mark_running(const std::string& run_id) {
  Statement s(db_,
              "UPDATE runs SET status = 'RUNNING', started_ms = ?2, heartbeat_ms = ?2, hostname = ?3, pid = ?4, pid_start = ?5 "
              "WHERE id = ?1 AND status = 'QUEUED'",
              path_);
  const int64_t pid = getpid();
  s.bind(1, run_id).bind(2, now_ms()).bind(3, this_host()).bind(4, pid);
  if (auto start = process_start(pid)) s.bind(5, *start); else s.bind_null(5);
  s.step();
  if (sqlite3_changes(db_) != 1) throw registry_error(fmt::format("{}: run {} is not QUEUED", path_.string(), run_id));
}

void Registry::mark_ended(const std::string& run_id, RunStatus status, const std::string& error) {
  if (status != RunStatus::Finished && status != RunStatus::Failed && status != RunStatus::Killed)
    throw internal_error("mark_ended needs a terminal status");
  Statement s(db_,
              "UPDATE runs SET status = ?2, ended_ms = ?3, error = ?4 WHERE id = ?1 AND status IN ('QUEUED','RUNNING')",
              path_);
  s.bind(1, run_id).bind(2, std::string(status_name(status))).bind(3, now_ms()).bind(4, error);
  s.step();
  if (sqlite3_changes(db_) != 1)
    throw registry_error(fmt::format("{}: run {} has already ended; terminal states are final", path_.string(), run_id));
}

void Registry::write_transaction(const std::function<void()>& body) {
  // BEGIN IMMEDIATE takes the write lock up front, so a busy registry waits (busy_timeout) here rather
  // than failing half-way through the body.
  exec("BEGIN IMMEDIATE");
  try {
    body();
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Registry::record_plugins(const std::string& run_id, const std::vector<PluginUse>& plugins) {
  write_transaction([&] {
    Statement s(db_, "INSERT INTO run_plugins VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", path_);
    for (const auto& p : plugins) {
      s.bind(1, run_id).bind(2, p.slot).bind(3, p.kind).bind(4, p.name).bind(5, p.version).bind(6, p.library).bind(7, p.library_sha256);
      s.step();
      s.reset();
    }
  });
}

void Registry::heartbeat(const std::string& run_id) {
  Statement s(db_, "UPDATE runs SET heartbeat_ms = ?2 WHERE id = ?1 AND status = 'RUNNING'", path_);
  s.bind(1, run_id).bind(2, now_ms());
  s.step();
}

std::vector<CollectedRun> Registry::collect_dead_runs(int64_t stale_after_ms) {
  struct Running {
    std::string id, name, host;
    std::optional<int64_t> pid, pid_start, last_sign;
  };
  std::vector<Running> running;
  {
    Statement s(db_,
                "SELECT id, name, hostname, pid, pid_start, COALESCE(heartbeat_ms, started_ms, created_ms) FROM runs "
                "WHERE status = 'RUNNING' ORDER BY created_ms",
                path_);
    while (s.step()) {
      Running r{s.text(0), s.text(1), s.text(2), {}, {}, {}};
      if (!s.is_null(3)) r.pid = s.integer(3);
      if (!s.is_null(4)) r.pid_start = s.integer(4);
      if (!s.is_null(5)) r.last_sign = s.integer(5);
      running.push_back(r);
    }
  }
  const std::string host = this_host();
  const int64_t now = now_ms();
  std::vector<CollectedRun> collected;
  for (const auto& r : running) {
    std::string reason;
    if (r.pid && r.host == host) {
      // On this host the process table is the truth: no waiting for a heartbeat to go stale.
      const auto start = process_start(*r.pid);
      if (!start) reason = fmt::format("its process {} on {} is gone", *r.pid, host);
      else if (r.pid_start && *start != *r.pid_start)
        reason = fmt::format("its process {} on {} is gone (the pid now belongs to another process)", *r.pid, host);
    } else {
      const int64_t age = now - r.last_sign.value_or(now);
      if (age > stale_after_ms)
        reason = fmt::format("no sign of life for {:.0f} min (host {}; this is {}, so only the heartbeat can tell)",
                             age / 60000.0, r.host.empty() ? "not recorded" : r.host, host);
    }
    if (reason.empty()) continue;
    Statement s(db_,
                "UPDATE runs SET status = 'KILLED', ended_ms = ?2, error = ?3 WHERE id = ?1 AND status = 'RUNNING'",
                path_);
    s.bind(1, r.id).bind(2, now).bind(3, "found dead by asg runs gc: " + reason);
    s.step();
    if (sqlite3_changes(db_) == 1) collected.push_back(CollectedRun{r.id, r.name, reason});  // else it ended meanwhile
  }
  return collected;
}

void Registry::log_metrics(const std::string& run_id, const std::vector<MetricPoint>& points) {
  if (points.empty()) return;
  if (!metric_statements_) metric_statements_ = std::make_unique<MetricStatements>(db_, path_);
  auto& [beat, insert] = *metric_statements_;
  // Reset on every way out, a throw included: a statement left mid-step would keep its read open, and the
  // uncopied texts bound below must not stay bound past this call.
  struct ResetOnExit {
    MetricStatements& statements;
    ~ResetOnExit() {
      statements.heartbeat.reset();
      statements.insert.reset();
    }
  } reset_on_exit{*metric_statements_};
  write_transaction([&] {
    // Every flush of metrics is also a sign of life.
    beat.bind_static(1, run_id).bind(2, now_ms());
    beat.step();
    // run_id and the points outlive this call, so their text is bound without a copy; every parameter
    // is rebound for every row, so no binding is cleared in between.
    insert.bind_static(1, run_id);
    for (const auto& p : points) {
      insert.bind_static(2, p.key).bind(3, p.step).bind(5, p.time_ms ? p.time_ms : now_ms());
      if (std::isfinite(p.value)) insert.bind(4, p.value); else insert.bind_null(4);
      insert.step();
      insert.rewind();
    }
  });
}

void Registry::set_results(const std::string& run_id, const std::vector<ResultValue>& results) {
  write_transaction([&] {
    Statement s(db_, "INSERT OR REPLACE INTO results VALUES (?1, ?2, ?3, ?4, ?5)", path_);
    insert_values(s, run_id, results);
    repack_results(db_, path_, run_id);
  });
}

void Registry::add_artifact(const std::string& run_id, const Artifact& a) {
  Statement s(db_, "INSERT OR REPLACE INTO artifacts VALUES (?1, ?2, ?3, ?4)", path_);
  s.bind(1, run_id).bind(2, a.path).bind(3, a.sha256).bind(4, a.bytes);
  s.step();
}

std::string Registry::config_text(const std::string& run_id) const {
  Statement s(db_,
              "SELECT COALESCE((SELECT c.config_text FROM run_configs c WHERE c.run_id = runs.id), runs.config_text) FROM runs "
              "WHERE id = ?1",
              path_);
  s.bind(1, run_id);
  return s.step() ? s.text(0) : "";
}

std::optional<RunRecord> Registry::find_run(const std::string& run_id) const {
  Statement s(db_, fmt::format("SELECT {} FROM runs WHERE id = ?1", run_columns()), path_);
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return RunReader(s).read();
}

std::vector<RunRecord> Registry::list_runs(const std::string& benchmark, std::optional<RunStatus> status) const {
  RunQuery query;
  query.benchmark = benchmark;
  query.status = status;
  return list_runs(query);
}

std::vector<RunRecord> Registry::list_runs(const RunQuery& query) const {
  Statement s(db_,
              fmt::format("SELECT {} FROM runs WHERE (?1 = '' OR benchmark = ?1) AND (?2 = '' OR status = ?2) "
                          "AND (?3 IS NULL OR parent_run_id = ?3) AND (?4 = '' OR role = ?4) AND (?5 OR deleted_ms IS NULL) "
                          "AND (?6 = '' OR config_hash = ?6) ORDER BY created_ms DESC, id DESC LIMIT ?7",
                          run_columns(query.with_large_texts ? RunTexts::All : RunTexts::WithoutLargeTexts)),
              path_);
  s.bind(1, query.benchmark).bind(2, std::string(query.status ? status_name(*query.status) : ""));
  if (query.parent_run_id) s.bind(3, *query.parent_run_id); else s.bind_null(3);
  s.bind(4, std::string(query.role ? run_role_name(*query.role) : "")).bind(5, static_cast<int64_t>(query.include_deleted));
  s.bind(6, query.config_hash).bind(7, query.limit == 0 ? int64_t{-1} : static_cast<int64_t>(query.limit));
  std::vector<RunRecord> out;
  const RunReader reader(s);
  while (s.step()) out.push_back(reader.read());
  return out;
}

std::vector<RunRecord> Registry::find_runs_by_prefix(const std::string& prefix, size_t limit) const {
  // substr rather than LIKE: ids may hold '_' or '%', which LIKE would read as wildcards.
  Statement s(db_,
              fmt::format("SELECT {} FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY created_ms DESC, id DESC LIMIT ?2",
                          run_columns()),
              path_);
  s.bind(1, prefix).bind(2, static_cast<int64_t>(limit));
  std::vector<RunRecord> out;
  const RunReader reader(s);
  while (s.step()) out.push_back(reader.read());
  return out;
}

RunRecord Registry::resolve_run(const std::string& id_or_prefix) const {
  if (auto exact = find_run(id_or_prefix)) return *exact;
  constexpr size_t kShown = 10;
  const auto matches = id_or_prefix.empty() ? std::vector<RunRecord>{} : find_runs_by_prefix(id_or_prefix, kShown + 1);
  if (matches.size() == 1) return matches.front();
  auto describe = [](const RunRecord& r) {
    return fmt::format("  {} {} {}{}{}", r.id, status_name(r.status), r.name,
                       r.role == RunRole::Run ? "" : fmt::format(" [{}]", run_role_name(r.role)), r.deleted_ms ? " (deleted)" : "");
  };
  std::vector<std::string> lines;
  if (matches.empty()) {
    const auto newest = list_runs(RunQuery{});
    for (size_t i = 0; i < newest.size() && i < 5; ++i) lines.push_back(describe(newest[i]));
    throw config_error(fmt::format("{}: no run '{}' (an id or the start of one; asg runs lists them){}{}", path_.string(), id_or_prefix,
                                   lines.empty() ? " (the registry has no runs)" : "; the newest:\n",
                                   fmt::join(lines, "\n")));
  }
  for (size_t i = 0; i < matches.size() && i < kShown; ++i) lines.push_back(describe(matches[i]));
  throw config_error(fmt::format("{}: run id '{}' is ambiguous; it starts {}{} runs:\n{}\ngive more of the id", path_.string(),
                                 id_or_prefix, matches.size() > kShown ? "more than " : "",
                                 std::min(matches.size(), kShown), fmt::join(lines, "\n")));
}

void Registry::mark_deleted(const std::string& run_id) {
  write_transaction([&] {
    Statement status(db_, "SELECT status FROM runs WHERE id = ?1", path_);
    status.bind(1, run_id);
    if (!status.step()) throw registry_error(fmt::format("{}: no run '{}'", path_.string(), run_id));
    const std::string st = status.text(0);
    if (st == "RUNNING" || st == "QUEUED")
      throw config_error(fmt::format("{}: run {} is {}; stop it (or let asg runs gc mark it KILLED) before removing it",
                                     path_.string(), run_id, st));
    Statement s(db_, "UPDATE runs SET deleted_ms = ?2 WHERE id = ?1 AND deleted_ms IS NULL", path_);
    s.bind(1, run_id).bind(2, now_ms());
    s.step();
  });
}

std::vector<PluginUse> Registry::plugins(const std::string& run_id) const {
  Statement s(db_, "SELECT slot, kind, name, version, library, library_sha256 FROM run_plugins WHERE run_id = ?1 ORDER BY rowid",
              path_);
  s.bind(1, run_id);
  std::vector<PluginUse> out;
  while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5)});
  return out;
}

std::vector<MetricPoint> Registry::metric_history(const std::string& run_id, const std::string& key) const {
  Statement s(db_,
              "SELECT key, step, value, time_ms FROM metric_history WHERE run_id = ?1 AND (?2 = '' OR key = ?2) "
              "ORDER BY rowid",
              path_);
  s.bind(1, run_id).bind(2, key);
  std::vector<MetricPoint> out;
  while (s.step()) out.push_back({s.text(0), s.integer(1), s.real(2), s.integer(3)});
  return out;
}

std::vector<ResultValue> Registry::results(const std::string& run_id) const {
  Statement s(db_, "SELECT key, value, higher_is_better FROM results WHERE run_id = ?1 ORDER BY ordinal", path_);
  s.bind(1, run_id);
  return read_values(s);
}

std::vector<RunResults> Registry::ranked_runs(const std::string& benchmark) const {
  // The run columns without the large texts (config, environment, protocol), then the packed results.
  Statement s(db_,
              fmt::format("SELECT {}, results_packed FROM runs WHERE (?1 = '' OR benchmark = ?1) AND status = 'FINISHED' AND "
                          "role = 'run' AND deleted_ms IS NULL ORDER BY created_ms DESC, id DESC",
                          run_columns(RunTexts::WithoutLargeTextsOrProtocol)),
              path_);
  s.bind(1, benchmark);
  std::vector<RunResults> out;
  {
    Statement count(db_, "SELECT count(*) FROM runs WHERE (?1 = '' OR benchmark = ?1) AND status = 'FINISHED'", path_);
    count.bind(1, benchmark);
    if (count.step()) out.reserve(static_cast<size_t>(count.integer(0)));
  }
  std::vector<size_t> unpacked;  // runs whose packed column did not decode
  const RunReader reader(s);
  const int packed = s.column("results_packed");
  while (s.step()) {
    RunResults& r = out.emplace_back(RunResults{reader.read(), {}});
    // NULL: no results were ever set (every writer of results packs them).
    if (s.is_null(packed)) continue;
    const auto* blob = static_cast<const unsigned char*>(sqlite3_column_blob(s.raw(), packed));
    if (!unpack_results(blob, static_cast<size_t>(sqlite3_column_bytes(s.raw(), packed)), r.results))
      unpacked.push_back(out.size() - 1);
  }
  // A damaged packed column costs speed, never numbers: those runs read the results table.
  for (size_t i : unpacked) out[i].results = results(out[i].run.id);
  return out;
}

void Registry::repack_all_results() {
  write_transaction([&] { repack_every_run(db_, path_); });
}

std::string Registry::protocol_json_of(const std::string& benchmark, const std::string& protocol_hash) const {
  Statement s(db_,
              "SELECT protocol_json FROM runs WHERE (?1 = '' OR benchmark = ?1) AND protocol_hash = ?2 AND protocol_json != '' "
              "ORDER BY created_ms DESC LIMIT 1",
              path_);
  s.bind(1, benchmark).bind(2, protocol_hash);
  return s.step() ? s.text(0) : "";
}

int64_t Registry::begin_result_set(const NewResultSet& set) {
  const auto protocol = nlohmann::json::parse(set.protocol_json, nullptr, /*allow_exceptions=*/false);
  if (!protocol.is_object())
    throw internal_error(fmt::format("result set of run '{}': protocol_json must be a JSON object, got: {}", set.run_id,
                                     set.protocol_json));
  int64_t id = 0;
  write_transaction([&] {
    Statement run(db_, "SELECT status FROM runs WHERE id = ?1", path_);
    run.bind(1, set.run_id);
    if (!run.step()) throw registry_error(fmt::format("{}: no run '{}'", path_.string(), set.run_id));
    if (run.text(0) != "FINISHED")
      throw registry_error(fmt::format("{}: run {} is {}; only a FINISHED run gets result sets", path_.string(), set.run_id,
                                       run.text(0)));
    Statement s(db_,
                "INSERT INTO result_sets (run_id, benchmark, rank_by, protocol_hash, protocol_json, config_text, status, "
                "created_ms, git_commit, host_json, output_dir) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'RUNNING', ?7, ?8, ?9, ?10)",
                path_);
    s.bind(1, set.run_id).bind(2, set.benchmark).bind(3, set.rank_by).bind(4, set.protocol_hash).bind(5, set.protocol_json);
    s.bind(6, set.config_text).bind(7, now_ms()).bind(8, set.git_commit).bind(9, set.host_json).bind(10, set.output_dir);
    s.step();
    id = sqlite3_last_insert_rowid(db_);
  });
  return id;
}

void Registry::end_result_set(int64_t set_id, RunStatus status, const std::vector<ResultValue>& results, const std::string& error) {
  if (status != RunStatus::Finished && status != RunStatus::Failed && status != RunStatus::Killed)
    throw internal_error("end_result_set needs a terminal status");
  write_transaction([&] {
    Statement s(db_, "UPDATE result_sets SET status = ?2, ended_ms = ?3, error = ?4 WHERE id = ?1 AND status = 'RUNNING'", path_);
    s.bind(1, set_id).bind(2, std::string(status_name(status))).bind(3, now_ms()).bind(4, error);
    s.step();
    if (sqlite3_changes(db_) != 1)
      throw registry_error(fmt::format("{}: result set {} has already ended; terminal states are final", path_.string(), set_id));
    Statement v(db_, "INSERT INTO result_set_values VALUES (?1, ?2, ?3, ?4, ?5)", path_);
    insert_values(v, set_id, results);
  });
}

namespace {
constexpr const char* kResultSetColumns =
    "id, run_id, benchmark, rank_by, protocol_hash, protocol_json, config_text, status, created_ms, ended_ms, git_commit, "
    "host_json, output_dir, error";
ResultSet read_result_set(const Statement& s) {
  ResultSet r;
  r.id = s.integer(0);
  r.run_id = s.text(1);
  r.benchmark = s.text(2);
  r.rank_by = s.text(3);
  r.protocol_hash = s.text(4);
  r.protocol_json = s.text(5);
  r.config_text = s.text(6);
  r.status = parse_status(s.text(7));
  r.created_ms = s.integer(8);
  if (!s.is_null(9)) r.ended_ms = s.integer(9);
  r.git_commit = s.text(10);
  r.host_json = s.text(11);
  r.output_dir = s.text(12);
  r.error = s.text(13);
  return r;
}
}  // namespace

std::vector<ResultSet> Registry::result_sets(const std::string& run_id, const std::string& benchmark) const {
  std::string sql = fmt::format("SELECT {} FROM result_sets WHERE 1", kResultSetColumns);
  if (!run_id.empty()) sql += " AND run_id = ?1";
  if (!benchmark.empty()) sql += " AND benchmark = ?2";
  sql += " ORDER BY id DESC";
  Statement s(db_, sql, path_);
  if (!run_id.empty()) s.bind(1, run_id);
  if (!benchmark.empty()) s.bind(2, benchmark);
  std::vector<ResultSet> out;
  while (s.step()) out.push_back(read_result_set(s));
  return out;
}

std::vector<ResultValue> Registry::result_set_values(int64_t set_id) const {
  Statement s(db_, "SELECT key, value, higher_is_better FROM result_set_values WHERE set_id = ?1 ORDER BY ordinal", path_);
  s.bind(1, set_id);
  return read_values(s);
}

std::vector<Artifact> Registry::artifacts(const std::string& run_id) const {
  Statement s(db_, "SELECT path, sha256, bytes FROM artifacts WHERE run_id = ?1 ORDER BY path", path_);
  s.bind(1, run_id);
  std::vector<Artifact> out;
  while (s.step()) out.push_back({s.text(0), s.text(1), s.integer(2)});
  return out;
}

}  // namespace asg
