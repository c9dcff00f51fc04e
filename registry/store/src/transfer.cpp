// Moving runs between registries: a run's digest, export into a new registry file, and import that
// checks every digest and the file's schema first and copies only the runs it does not have.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/registry.h"
#include "packed_results.h"
#include "sqlite_statement.h"

namespace asg {

using namespace registry_store;


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

namespace {

// The schema version of a registry file, read without migrating or writing it.
int schema_version_of(const std::filesystem::path& from) {
  int version = 0;
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
  return version;
}

// The run ids of a registry, oldest first and every run after its parent (copies check their references).
std::vector<std::string> ids_parents_first(sqlite3* db, const std::filesystem::path& file) {
  Statement all(db, "SELECT id, parent_run_id FROM runs ORDER BY created_ms, id", file);
  std::vector<std::pair<std::string, std::string>> rows;
  std::map<std::string, std::string> parent_of;
  while (all.step()) {
    rows.emplace_back(all.text(0), all.text(1));
    parent_of[rows.back().first] = rows.back().second;
  }
  std::vector<std::string> ids;
  std::set<std::string> placed;
  std::function<void(const std::string&)> place = [&](const std::string& id) {
    if (!parent_of.count(id) || !placed.insert(id).second) return;  // a parent outside the file: the target must have it
    place(parent_of[id]);
    ids.push_back(id);
  };
  for (const auto& [id, parent] : rows) place(id);
  return ids;
}

// Every run of an export against the digest its manifest recorded (files without a manifest have nothing to check).
void check_export_manifest(sqlite3* db, const std::filesystem::path& file, const std::filesystem::path& from,
                           const std::vector<std::string>& ids, const Registry& source) {
  {
    Statement t(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'export_manifest'", file);
    if (!t.step()) return;
  }
  Statement m(db, "SELECT run_id, sha256 FROM export_manifest", file);
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

// Copies run `id` and its rows from the attached `source` database into `main`, inside the caller's transaction.
// Result sets get new ids here; derived data (the packed results) is rebuilt, never taken from the file: the
// digest covers the results table, not the column.
void copy_run(sqlite3* db, const std::filesystem::path& path, const std::string& id) {
  Statement run(db, "INSERT INTO main.runs SELECT * FROM source.runs WHERE id = ?1", path);
  run.bind(1, id);
  run.step();
  for (const char* table : kRunTables) {
    Statement rows(db, fmt::format("INSERT INTO main.{0} SELECT * FROM source.{0} WHERE run_id = ?1 ORDER BY rowid", table), path);
    rows.bind(1, id);
    rows.step();
  }
  Statement sets(db, "SELECT id FROM source.result_sets WHERE run_id = ?1 ORDER BY id", path);
  sets.bind(1, id);
  while (sets.step()) {
    const int64_t old_id = sets.integer(0);
    Statement insert(db,
                     "INSERT INTO main.result_sets (run_id, benchmark, rank_by, protocol_hash, protocol_json, config_text, "
                     "status, created_ms, ended_ms, git_commit, host_json, output_dir, error) SELECT run_id, benchmark, "
                     "rank_by, protocol_hash, protocol_json, config_text, status, created_ms, ended_ms, git_commit, host_json, "
                     "output_dir, error FROM source.result_sets WHERE id = ?1",
                     path);
    insert.bind(1, old_id);
    insert.step();
    const int64_t new_id = sqlite3_last_insert_rowid(db);
    Statement values(db,
                     "INSERT INTO main.result_set_values SELECT ?2, key, value, higher_is_better, ordinal FROM "
                     "source.result_set_values WHERE set_id = ?1 ORDER BY rowid",
                     path);
    values.bind(1, old_id).bind(2, new_id);
    values.step();
  }
  repack_results(db, path, id);
}

// A temporary file removed (with its WAL and shared-memory files) when the import ends, however it ends.
struct RemoveCopy {
  std::filesystem::path file;
  ~RemoveCopy() {
    std::error_code ec;
    if (!file.empty())
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(file.string() + suffix, ec);
  }
};

}  // namespace

ImportReport Registry::import_runs(const std::filesystem::path& from) {
  if (!std::filesystem::is_regular_file(from)) throw config_error(fmt::format("{}: no such file to import", from.string()));
  if (std::filesystem::equivalent(from, path_))
    throw config_error(fmt::format("{}: cannot import a registry into itself", from.string()));
  // A newer schema is refused before anything is opened for writing; an older one is migrated on a copy, never in
  // the user's file.
  const int version = schema_version_of(from);
  if (version > kSchemaVersion)
    throw registry_error(fmt::format("{}: written by a newer ASG Lab (registry schema {}; this asg reads up to {}); import it "
                                     "with that version. Nothing was imported.",
                                     from.string(), version, kSchemaVersion));
  if (version == 0)
    throw registry_error(fmt::format("{}: not an ASG Lab registry or export (no schema version). Nothing was imported.", from.string()));
  std::filesystem::path source_file = from;
  RemoveCopy remove_copy;
  if (version < kSchemaVersion) {
    remove_copy.file = std::filesystem::temp_directory_path() / fmt::format("asg-import-{}-{}.sqlite", getpid(), now_ms());
    std::filesystem::copy_file(from, remove_copy.file);
    source_file = remove_copy.file;
  }

  ImportReport report;
  std::vector<std::string> to_copy;
  {
    Registry source(source_file);
    const std::vector<std::string> ids = ids_parents_first(source.db_, source_file);
    // Every digest is checked before anything is written: a damaged export changes nothing.
    check_export_manifest(source.db_, source_file, from, ids, source);
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
    for (const auto& id : to_copy) {
      copy_run(db_, path_, id);
      report.imported.push_back(id);
    }
  });
  return report;
}

}  // namespace asg
