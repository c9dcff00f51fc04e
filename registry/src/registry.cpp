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

namespace asg {

namespace {

// Index i migrates schema version i to i + 1. Append only; never edit a shipped migration.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE runs (
  id              TEXT PRIMARY KEY,
  name            TEXT NOT NULL,
  experiment_path TEXT NOT NULL,
  benchmark       TEXT NOT NULL DEFAULT '',
  rank_by         TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL CHECK (status IN ('QUEUED','RUNNING','FINISHED','FAILED','KILLED')),
  created_ms      INTEGER NOT NULL,
  started_ms      INTEGER,
  ended_ms        INTEGER,
  config_hash     TEXT NOT NULL,
  config_text     TEXT NOT NULL,
  seed            INTEGER NOT NULL,
  git_commit      TEXT NOT NULL DEFAULT '',
  git_dirty       INTEGER NOT NULL DEFAULT 0,
  host_json       TEXT NOT NULL DEFAULT '{}',
  run_dir         TEXT NOT NULL DEFAULT '',
  parent_run_id   TEXT REFERENCES runs(id),
  attempt         INTEGER NOT NULL DEFAULT 1,
  error           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_benchmark ON runs(benchmark, status);
CREATE INDEX runs_config_hash ON runs(config_hash);
CREATE TABLE run_plugins (
  run_id         TEXT NOT NULL REFERENCES runs(id),
  slot           TEXT NOT NULL,
  kind           TEXT NOT NULL,
  name           TEXT NOT NULL,
  version        TEXT NOT NULL,
  library        TEXT NOT NULL,
  library_sha256 TEXT NOT NULL,
  PRIMARY KEY (run_id, slot)
);
CREATE TABLE metric_history (
  run_id  TEXT NOT NULL REFERENCES runs(id),
  key     TEXT NOT NULL,
  step    INTEGER NOT NULL,
  value   REAL,
  time_ms INTEGER NOT NULL
);
CREATE INDEX metric_history_run ON metric_history(run_id, key, step);
CREATE TABLE results (
  run_id           TEXT NOT NULL REFERENCES runs(id),
  key              TEXT NOT NULL,
  value            REAL,
  higher_is_better INTEGER NOT NULL,
  ordinal          INTEGER NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE TABLE artifacts (
  run_id TEXT NOT NULL REFERENCES runs(id),
  path   TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  bytes  INTEGER NOT NULL,
  PRIMARY KEY (run_id, path)
);
)sql",
    // 1 -> 2: which process runs a RUNNING row, and when it last showed life (asg runs gc).
    R"sql(
ALTER TABLE runs ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN pid_start INTEGER;
ALTER TABLE runs ADD COLUMN heartbeat_ms INTEGER;
)sql",
    // 2 -> 3: what was trained (method) and what was measured (protocol), so the leaderboard ranks only runs
    // measured the same way; and the checkpoint a resumed attempt started from. Rows from before keep ''
    // and NULL: their protocol is unknown, not "the same as everyone else's".
    R"sql(
ALTER TABLE runs ADD COLUMN method_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN protocol_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN protocol_json TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN resumed_from TEXT;
CREATE INDEX runs_benchmark_protocol ON runs(benchmark, protocol_hash);
)sql",
    // 3 -> 4: result sets: a finished run evaluated again under another protocol (asg eval RUN --benchmark NAME),
    // without retraining. The run's own results stay where they were; each set has its own protocol and values.
    R"sql(
CREATE TABLE result_sets (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id        TEXT NOT NULL REFERENCES runs(id),
  benchmark     TEXT NOT NULL,
  rank_by       TEXT NOT NULL DEFAULT '',
  protocol_hash TEXT NOT NULL,
  protocol_json TEXT NOT NULL,
  config_text   TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('RUNNING','FINISHED','FAILED','KILLED')),
  created_ms    INTEGER NOT NULL,
  ended_ms      INTEGER,
  git_commit    TEXT NOT NULL DEFAULT '',
  host_json     TEXT NOT NULL DEFAULT '{}',
  output_dir    TEXT NOT NULL DEFAULT '',
  error         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX result_sets_run ON result_sets(run_id);
CREATE INDEX result_sets_benchmark ON result_sets(benchmark, status);
CREATE TABLE result_set_values (
  set_id           INTEGER NOT NULL REFERENCES result_sets(id),
  key              TEXT NOT NULL,
  value            REAL,
  higher_is_better INTEGER NOT NULL,
  ordinal          INTEGER NOT NULL,
  PRIMARY KEY (set_id, key)
);
)sql",
    // 4 -> 5: what a run is for (an experiment run, a sweep that parents its points, a reproduction that reruns
    // its parent), and soft deletion (asg runs rm): a deleted run leaves listings and leaderboards but keeps
    // its rows, so that nothing recorded is lost by a mistyped id.
    R"sql(
ALTER TABLE runs ADD COLUMN role TEXT NOT NULL DEFAULT 'run' CHECK (role IN ('run','sweep','reproduction'));
ALTER TABLE runs ADD COLUMN deleted_ms INTEGER;
ALTER TABLE runs ADD COLUMN seedless_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_parent ON runs(parent_run_id);
CREATE INDEX runs_created ON runs(created_ms, id);
-- Every column a leaderboard reads of a result, so that the results of 100k runs come from the index alone.
CREATE INDEX results_cover ON results(run_id, ordinal, key, value, higher_is_better);
-- A run's resolved config (2 KB and more) in a table of its own, so that reading the runs table for a listing
-- or a leaderboard does not walk every config's overflow pages. Rows written before keep theirs in
-- runs.config_text (a migration never changes a value); reads take whichever is there.
CREATE TABLE run_configs (
  run_id      TEXT PRIMARY KEY REFERENCES runs(id),
  config_text TEXT NOT NULL
);
)sql",
    // 5 -> 6: each run's own results packed into one column of its row (pack_results below), so that ranking 100k
    // runs reads 100k rows instead of a million. The results table stays the record: the column is derived from
    // it, filled by this migration's C++ step and rewritten whenever a run's results are.
    R"sql(
ALTER TABLE runs ADD COLUMN results_packed BLOB;
)sql",
};
static_assert(std::size(kMigrations) == Registry::kSchemaVersion);

// How long a connection waits for another's lock before "database is locked". Write transactions are
// short (a metric flush is one), so this is only reached when a writer hangs while holding the lock.
constexpr int kBusyTimeoutMs = 10000;

// Runs SQL; returns the SQLite result code and, when it is not SQLITE_OK, the message in `error`.
int exec_status(sqlite3* db, const std::string& sql, std::string& error) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) error = err ? err : sqlite3_errmsg(db);
  sqlite3_free(err);
  return rc;
}

[[noreturn]] void throw_sql_error(const std::filesystem::path& file, const std::string& message) {
  if (message.find("file is not a database") != std::string::npos)
    throw registry_error(fmt::format("{}: not an ASG Lab registry (not a SQLite database)", file.string()));
  throw registry_error(fmt::format("{}: {}", file.string(), message));
}

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

// One prepared statement. Errors name the registry file; the path is kept by reference and only turned
// into a string when there is an error, so stepping through many rows allocates nothing.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::filesystem::path& file) : db_(db), file_(file) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
      throw registry_error(fmt::format("{}: cannot prepare statement: {}", file.string(), sqlite3_errmsg(db)));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.c_str(), -1, SQLITE_TRANSIENT); return *this; }
  // Binds without copying: `v` must stay alive and unchanged until the statement is stepped, reset and
  // rebound (or destroyed).
  Statement& bind_static(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Statement& bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); return *this; }
  Statement& bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); return *this; }
  Statement& bind_null(int i) { sqlite3_bind_null(stmt_, i); return *this; }
  // true while a row is available
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw registry_error(fmt::format("{}: {}", file_.string(), sqlite3_errmsg(db_)));
  }
  void reset() { sqlite3_reset(stmt_); sqlite3_clear_bindings(stmt_); }
  // Ready to step again; the bindings stay, for loops that rebind every parameter anyway.
  void rewind() { sqlite3_reset(stmt_); }
  std::string text(int col) const {
    auto p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL ? std::nan("") : sqlite3_column_double(stmt_, col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  sqlite3_stmt* raw() const { return stmt_; }

 private:
  sqlite3* db_;
  const std::filesystem::path& file_;
  sqlite3_stmt* stmt_ = nullptr;
};

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

// ---- packed results (runs.results_packed, schema 6) --------------------------------------------------------
// A run's own results in recorded order, as one BLOB: u32 count, then per value u32 key length, the key's bytes,
// the value as IEEE-754 binary64 (NaN where the results table holds NULL) and one byte higher_is_better; integers
// little-endian whatever the host, like SQLite's own file format, so a registry file reads the same anywhere.

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::string pack_results(const std::vector<ResultValue>& results) {
  std::string out;
  put_u32(out, static_cast<uint32_t>(results.size()));
  for (const auto& r : results) {
    put_u32(out, static_cast<uint32_t>(r.key.size()));
    out += r.key;
    const uint64_t bits = std::bit_cast<uint64_t>(std::isfinite(r.value) ? r.value : std::nan(""));
    for (int i = 0; i < 8; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
    out += static_cast<char>(r.higher_is_better ? 1 : 0);
  }
  return out;
}

// false when `data` is not a whole packed list (the caller then reads the results table).
bool unpack_results(const unsigned char* data, size_t size, std::vector<ResultValue>& out) {
  out.clear();
  if (size < 4) return false;
  const uint64_t count = get_le(data, 4);
  size_t at = 4;
  if (count > size) return false;  // every value takes more than a byte: a count this large is damage, not data
  out.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (size - at < 4) return false;
    const uint64_t key_size = get_le(data + at, 4);
    at += 4;
    if (size - at < key_size + 9) return false;
    ResultValue v;
    v.key.assign(reinterpret_cast<const char*>(data + at), key_size);
    at += key_size;
    v.value = std::bit_cast<double>(get_le(data + at, 8));
    v.higher_is_better = data[at + 8] != 0;
    at += 9;
    out.push_back(std::move(v));
  }
  return at == size;
}

std::vector<ResultValue> read_values(Statement& s) {
  std::vector<ResultValue> out;
  while (s.step()) out.push_back({s.text(0), s.real(1), s.integer(2) != 0});
  return out;
}

constexpr const char* kWritePacked = "UPDATE runs SET results_packed = ?2 WHERE id = ?1";

// Steps `update` (kWritePacked) with `values` packed as the run's results.
void write_packed(Statement& update, const std::string& run_id, const std::vector<ResultValue>& values) {
  const std::string packed = pack_results(values);
  update.bind(1, run_id);
  sqlite3_bind_blob(update.raw(), 2, packed.data(), static_cast<int>(packed.size()), SQLITE_STATIC);
  update.step();
  update.reset();
}

// Rewrites runs.results_packed of `run_id` from its rows in the results table (inside the caller's transaction).
void repack_results(sqlite3* db, const std::filesystem::path& file, const std::string& run_id) {
  Statement read(db, "SELECT key, value, higher_is_better FROM results WHERE run_id = ?1 ORDER BY ordinal", file);
  read.bind(1, run_id);
  Statement update(db, kWritePacked, file);
  write_packed(update, run_id, read_values(read));
}

void repack_every_run(sqlite3* db, const std::filesystem::path& file) {
  // One ordered pass over the covering index and one prepared UPDATE: a registry of 100k runs repacks in seconds.
  Statement read(db, "SELECT run_id, key, value, higher_is_better FROM results INDEXED BY results_cover ORDER BY run_id, ordinal", file);
  Statement update(db, kWritePacked, file);
  std::string run_id;
  std::vector<ResultValue> values;
  auto flush = [&] {
    if (run_id.empty()) return;
    write_packed(update, run_id, values);
    values.clear();
  };
  while (read.step()) {
    const char* id = reinterpret_cast<const char*>(sqlite3_column_text(read.raw(), 0));
    if (run_id != id) {
      flush();
      run_id = id;
    }
    values.push_back({read.text(1), read.real(2), read.integer(3) != 0});
  }
  flush();
}

constexpr const char* kRunColumns =
    "id, name, experiment_path, benchmark, rank_by, status, created_ms, started_ms, ended_ms, config_hash, "
    "COALESCE((SELECT c.config_text FROM run_configs c WHERE c.run_id = runs.id), runs.config_text), seed, git_commit, git_dirty, host_json, run_dir, parent_run_id, attempt, error, method_hash, protocol_hash, "
    "protocol_json, resumed_from, role, deleted_ms, seedless_hash";

// kRunColumns with '' in place of the config text and the environment JSON (and, for a leaderboard, the protocol
// JSON, which it reads once per protocol): listings of many runs skip the largest columns.
std::string run_columns_without_large_texts(bool protocol_json_too = false) {
  std::string columns = kRunColumns;
  for (const std::string column : {"COALESCE((SELECT c.config_text FROM run_configs c WHERE c.run_id = runs.id), runs.config_text)",
                                   "host_json", "protocol_json"})
    if (column != "protocol_json" || protocol_json_too) columns.replace(columns.find(column), column.size(), "''");
  return columns;
}
constexpr int kRunColumnCount = 26;  // read_run reads columns 0 .. 25

RunRecord read_run(const Statement& s) {
  RunRecord r;
  r.id = s.text(0);
  r.name = s.text(1);
  r.experiment_path = s.text(2);
  r.benchmark = s.text(3);
  r.rank_by = s.text(4);
  r.status = parse_status(s.text(5));
  r.created_ms = s.integer(6);
  if (!s.is_null(7)) r.started_ms = s.integer(7);
  if (!s.is_null(8)) r.ended_ms = s.integer(8);
  r.config_hash = s.text(9);
  r.config_text = s.text(10);
  r.seed = s.integer(11);
  r.git_commit = s.text(12);
  r.git_dirty = s.integer(13) != 0;
  r.host_json = s.text(14);
  r.run_dir = s.text(15);
  if (!s.is_null(16)) r.parent_run_id = s.text(16);
  r.attempt = s.integer(17);
  r.error = s.text(18);
  r.method_hash = s.text(19);
  r.protocol_hash = s.text(20);
  r.protocol_json = s.text(21);
  if (!s.is_null(22)) r.resumed_from = s.text(22);
  r.role = parse_run_role(s.text(23));
  if (!s.is_null(24)) r.deleted_ms = s.integer(24);
  r.seedless_hash = s.text(25);
  return r;
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
    for (int v = version; v < kSchemaVersion; ++v) exec(kMigrations[v]);
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
  Statement s(db_, fmt::format("SELECT {} FROM runs WHERE id = ?1", kRunColumns), path_);
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return read_run(s);
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
                          query.with_large_texts ? std::string(kRunColumns) : run_columns_without_large_texts()),
              path_);
  s.bind(1, query.benchmark).bind(2, std::string(query.status ? status_name(*query.status) : ""));
  if (query.parent_run_id) s.bind(3, *query.parent_run_id); else s.bind_null(3);
  s.bind(4, std::string(query.role ? run_role_name(*query.role) : "")).bind(5, static_cast<int64_t>(query.include_deleted));
  s.bind(6, query.config_hash).bind(7, query.limit == 0 ? int64_t{-1} : static_cast<int64_t>(query.limit));
  std::vector<RunRecord> out;
  while (s.step()) out.push_back(read_run(s));
  return out;
}

std::vector<RunRecord> Registry::find_runs_by_prefix(const std::string& prefix, size_t limit) const {
  // substr rather than LIKE: ids may hold '_' or '%', which LIKE would read as wildcards.
  Statement s(db_,
              fmt::format("SELECT {} FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY created_ms DESC, id DESC LIMIT ?2",
                          kRunColumns),
              path_);
  s.bind(1, prefix).bind(2, static_cast<int64_t>(limit));
  std::vector<RunRecord> out;
  while (s.step()) out.push_back(read_run(s));
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
                          run_columns_without_large_texts(/*protocol_json_too=*/true)),
              path_);
  s.bind(1, benchmark);
  std::vector<RunResults> out;
  {
    Statement count(db_, "SELECT count(*) FROM runs WHERE (?1 = '' OR benchmark = ?1) AND status = 'FINISHED'", path_);
    count.bind(1, benchmark);
    if (count.step()) out.reserve(static_cast<size_t>(count.integer(0)));
  }
  std::vector<size_t> unpacked;  // runs whose packed column did not decode
  while (s.step()) {
    RunResults& r = out.emplace_back(RunResults{read_run(s), {}});
    // NULL: no results were ever set (every writer of results packs them).
    if (s.is_null(kRunColumnCount)) continue;
    const auto* blob = static_cast<const unsigned char*>(sqlite3_column_blob(s.raw(), kRunColumnCount));
    if (!unpack_results(blob, static_cast<size_t>(sqlite3_column_bytes(s.raw(), kRunColumnCount)), r.results))
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

// ---- moving runs between registries -----------------------------------------------------------------

namespace {

// The tables that hold a run, in the order rows must be copied (parents first). result_sets ids are local to a
// registry, so they are renumbered on import rather than copied.
constexpr const char* kRunTables[] = {"run_configs", "run_plugins", "metric_history", "results", "artifacts"};

// SQL string literal of a path, for ATTACH.
std::string sql_quoted_path(const std::filesystem::path& file) {
  std::string quoted = "'";
  for (char c : std::filesystem::absolute(file).string()) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

nlohmann::json optional_json(const std::optional<int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
nlohmann::json optional_json(const std::optional<std::string>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
// NaN (stored as NULL) has no JSON number; null keeps it apart from every value.
nlohmann::json number_json(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

}  // namespace

std::string Registry::run_digest(const std::string& run_id) const {
  const auto run = find_run(run_id);
  if (!run) throw registry_error(fmt::format("{}: no run '{}'", path_.string(), run_id));
  const RunRecord& r = *run;
  // Everything but deleted_ms: whether a copy is hidden here is this registry's business, not the run's.
  nlohmann::json j = {{"id", r.id}, {"name", r.name}, {"experiment_path", r.experiment_path}, {"benchmark", r.benchmark},
                      {"rank_by", r.rank_by}, {"status", status_name(r.status)}, {"created_ms", r.created_ms},
                      {"started_ms", optional_json(r.started_ms)}, {"ended_ms", optional_json(r.ended_ms)},
                      {"config_hash", r.config_hash}, {"config_text", r.config_text}, {"seed", r.seed},
                      {"git_commit", r.git_commit}, {"git_dirty", r.git_dirty}, {"host_json", r.host_json},
                      {"run_dir", r.run_dir}, {"parent_run_id", optional_json(r.parent_run_id)}, {"attempt", r.attempt},
                      {"error", r.error}, {"method_hash", r.method_hash}, {"protocol_hash", r.protocol_hash},
                      {"protocol_json", r.protocol_json}, {"resumed_from", optional_json(r.resumed_from)},
                      {"role", run_role_name(r.role)}};
  for (const auto& p : plugins(run_id))
    j["plugins"].push_back({p.slot, p.kind, p.name, p.version, p.library, p.library_sha256});
  for (const auto& m : metric_history(run_id)) j["history"].push_back({m.key, m.step, number_json(m.value), m.time_ms});
  for (const auto& v : results(run_id)) j["results"].push_back({v.key, number_json(v.value), v.higher_is_better});
  for (const auto& a : artifacts(run_id)) j["artifacts"].push_back({a.path, a.sha256, a.bytes});
  auto sets = result_sets(run_id);
  std::reverse(sets.begin(), sets.end());  // oldest first: the order in which they were added
  for (const auto& set : sets) {
    nlohmann::json values = nlohmann::json::array();
    for (const auto& v : result_set_values(set.id)) values.push_back({v.key, number_json(v.value), v.higher_is_better});
    j["result_sets"].push_back({set.benchmark, set.rank_by, set.protocol_hash, set.protocol_json, set.config_text,
                                status_name(set.status), set.created_ms, optional_json(set.ended_ms), set.git_commit,
                                set.host_json, set.output_dir, set.error, values});
  }
  return sha256_hex(j.dump());
}

std::vector<std::string> Registry::export_runs(const std::vector<std::string>& requested, const std::filesystem::path& out) const {
  if (requested.empty()) throw config_error("export: no runs named");
  // Each run after its ancestors: the runs table refers to parents, and the copy checks its references.
  std::vector<std::string> run_ids;
  std::set<std::string> placed;
  std::function<void(const std::string&)> place = [&](const std::string& id) {
    if (placed.count(id)) return;
    const auto run = find_run(id);
    if (!run) throw config_error(fmt::format("{}: no run '{}' to export", path_.string(), id));
    placed.insert(id);
    if (run->parent_run_id) place(*run->parent_run_id);
    run_ids.push_back(id);
  };
  for (const auto& id : requested) place(id);
  if (std::filesystem::exists(out))
    throw config_error(fmt::format("{}: already exists; export writes a new file (remove it or choose another name)", out.string()));
  {
    Registry target(out);  // the schema, as this asg writes it
    target.exec("CREATE TABLE export_manifest (run_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, source TEXT NOT NULL, "
                "exported_ms INTEGER NOT NULL)");
  }
  try {
    Registry target(out);
    // ATTACH cannot run inside a transaction: attach first, detach on every way out.
    target.exec(fmt::format("ATTACH DATABASE {} AS source", sql_quoted_path(path_)));
    struct Detach {
      Registry& r;
      ~Detach() { sqlite3_exec(r.db_, "DETACH DATABASE source", nullptr, nullptr, nullptr); }
    } detach{target};
    target.write_transaction([&] {
      Statement run(target.db_, "INSERT INTO main.runs SELECT * FROM source.runs WHERE id = ?1", out);
      Statement manifest(target.db_, "INSERT INTO export_manifest VALUES (?1, ?2, ?3, ?4)", out);
      for (const auto& id : run_ids) {
        run.bind(1, id);
        run.step();
        run.reset();
        for (const char* table : kRunTables) {
          Statement rows(target.db_, fmt::format("INSERT INTO main.{0} SELECT * FROM source.{0} WHERE run_id = ?1 ORDER BY rowid", table),
                         out);
          rows.bind(1, id);
          rows.step();
        }
        Statement sets(target.db_, "INSERT INTO main.result_sets SELECT * FROM source.result_sets WHERE run_id = ?1 ORDER BY id", out);
        sets.bind(1, id);
        sets.step();
        Statement values(target.db_,
                         "INSERT INTO main.result_set_values SELECT v.* FROM source.result_set_values v JOIN source.result_sets s "
                         "ON v.set_id = s.id WHERE s.run_id = ?1 ORDER BY v.rowid",
                         out);
        values.bind(1, id);
        values.step();
        manifest.bind(1, id).bind(2, run_digest(id)).bind(3, std::filesystem::absolute(path_).string()).bind(4, now_ms());
        manifest.step();
        manifest.reset();
      }
    });
  } catch (...) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(out.string() + suffix, ec);
    throw;
  }
  return run_ids;
}

ImportReport Registry::import_runs(const std::filesystem::path& from) {
  if (!std::filesystem::is_regular_file(from)) throw config_error(fmt::format("{}: no such file to import", from.string()));
  if (std::filesystem::equivalent(from, path_))
    throw config_error(fmt::format("{}: cannot import a registry into itself", from.string()));
  // Read the file's schema version without migrating it: a newer one is refused before anything is opened for
  // writing, and an older one is migrated on a copy, never in the user's file.
  int version = 0;
  {
    sqlite3* db = nullptr;
    std::string error;
    if (sqlite3_open_v2(from.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) error = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_stmt* st = nullptr;
    if (error.empty() && sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      version = sqlite3_column_int(st, 0);
    else if (error.empty())
      error = sqlite3_errmsg(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (!error.empty()) throw_sql_error(from, error);
  }
  if (version > kSchemaVersion)
    throw registry_error(fmt::format("{}: written by a newer ASG Lab (registry schema {}; this asg reads up to {}); import it "
                                     "with that version. Nothing was imported.",
                                     from.string(), version, kSchemaVersion));
  if (version == 0)
    throw registry_error(fmt::format("{}: not an ASG Lab registry or export (no schema version). Nothing was imported.", from.string()));
  std::filesystem::path source_file = from;
  std::filesystem::path copy;
  if (version < kSchemaVersion) {
    copy = std::filesystem::temp_directory_path() / fmt::format("asg-import-{}-{}.sqlite", getpid(), now_ms());
    std::filesystem::copy_file(from, copy);
    source_file = copy;
  }
  struct RemoveCopy {
    std::filesystem::path file;
    ~RemoveCopy() {
      std::error_code ec;
      if (!file.empty())
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix, ec);
    }
  } remove_copy{copy};

  ImportReport report;
  std::vector<std::string> to_copy;
  {
    Registry source(source_file);
    bool has_manifest = false;
    {
      Statement t(source.db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'export_manifest'", source_file);
      has_manifest = t.step();
    }
    std::vector<std::string> ids;  // oldest first, and every run after its parent (copies check their references)
    {
      Statement all(source.db_, "SELECT id, parent_run_id FROM runs ORDER BY created_ms, id", source_file);
      std::vector<std::pair<std::string, std::string>> rows;
      std::map<std::string, std::string> parent_of;
      while (all.step()) {
        rows.emplace_back(all.text(0), all.text(1));
        parent_of[rows.back().first] = rows.back().second;
      }
      std::set<std::string> placed;
      std::function<void(const std::string&)> place = [&](const std::string& id) {
        if (!parent_of.count(id) || !placed.insert(id).second) return;  // a parent outside the file: the target must have it
        place(parent_of[id]);
        ids.push_back(id);
      };
      for (const auto& [id, parent] : rows) place(id);
    }
    // Every digest is checked before anything is written: a damaged export changes nothing.
    if (has_manifest) {
      Statement m(source.db_, "SELECT run_id, sha256 FROM export_manifest", source_file);
      std::map<std::string, std::string> recorded;
      while (m.step()) recorded[m.text(0)] = m.text(1);
      for (const auto& id : ids) {
        auto it = recorded.find(id);
        if (it == recorded.end())
          throw registry_error(fmt::format("{}: run {} is in the file but not in its export manifest; the file was changed after "
                                           "export. Nothing was imported.", from.string(), id));
        const std::string digest = source.run_digest(id);
        if (digest != it->second)
          throw registry_error(fmt::format("{}: run {} does not match the digest recorded at export (recorded {}, now {}); the file "
                                           "was changed or damaged after export. Nothing was imported.",
                                           from.string(), id, it->second.substr(0, 16), digest.substr(0, 16)));
      }
    }
    for (const auto& id : ids) {
      if (!find_run(id)) to_copy.push_back(id);
      else if (run_digest(id) == source.run_digest(id)) report.already_present.push_back(id);
      else report.differing.push_back(id);
    }
    // A run whose parent is neither in the file nor here cannot be copied whole (asg runs export takes parents
    // along; a file written some other way may lack them).
    for (const auto& id : to_copy) {
      const auto run = source.find_run(id);
      if (run && run->parent_run_id && !source.find_run(*run->parent_run_id) && !find_run(*run->parent_run_id))
        throw registry_error(fmt::format("{}: run {} names parent run {}, which is neither in the file nor in {}; export the "
                                         "parent too (asg runs export takes parents along). Nothing was imported.",
                                         from.string(), id, *run->parent_run_id, path_.string()));
    }
  }
  if (to_copy.empty()) return report;
  exec(fmt::format("ATTACH DATABASE {} AS source", sql_quoted_path(source_file)));
  struct Detach {
    sqlite3* db;
    ~Detach() { sqlite3_exec(db, "DETACH DATABASE source", nullptr, nullptr, nullptr); }
  } detach{db_};
  write_transaction([&] {
    {
      for (const auto& id : to_copy) {
        Statement run(db_, "INSERT INTO main.runs SELECT * FROM source.runs WHERE id = ?1", path_);
        run.bind(1, id);
        run.step();
        for (const char* table : kRunTables) {
          Statement rows(db_, fmt::format("INSERT INTO main.{0} SELECT * FROM source.{0} WHERE run_id = ?1 ORDER BY rowid", table),
                         path_);
          rows.bind(1, id);
          rows.step();
        }
        Statement sets(db_, "SELECT id FROM source.result_sets WHERE run_id = ?1 ORDER BY id", path_);
        sets.bind(1, id);
        while (sets.step()) {
          const int64_t old_id = sets.integer(0);
          Statement insert(db_,
                           "INSERT INTO main.result_sets (run_id, benchmark, rank_by, protocol_hash, protocol_json, config_text, "
                           "status, created_ms, ended_ms, git_commit, host_json, output_dir, error) SELECT run_id, benchmark, "
                           "rank_by, protocol_hash, protocol_json, config_text, status, created_ms, ended_ms, git_commit, host_json, "
                           "output_dir, error FROM source.result_sets WHERE id = ?1",
                           path_);
          insert.bind(1, old_id);
          insert.step();
          const int64_t new_id = sqlite3_last_insert_rowid(db_);
          Statement values(db_,
                           "INSERT INTO main.result_set_values SELECT ?2, key, value, higher_is_better, ordinal FROM "
                           "source.result_set_values WHERE set_id = ?1 ORDER BY rowid",
                           path_);
          values.bind(1, old_id).bind(2, new_id);
          values.step();
        }
        // Derived data is rebuilt here, never taken from the file: the digest covers the results table, not the column.
        repack_results(db_, path_, id);
        report.imported.push_back(id);
      }
    }
  });
  return report;
}

}  // namespace asg
