// The SQL of every registry schema migration, in order.
#include "schema.h"

#include <iterator>

#include "asg/registry.h"

namespace asg::registry_store {

namespace {

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

}  // namespace

std::span<const char* const> schema_migrations() { return kMigrations; }

}  // namespace asg::registry_store
