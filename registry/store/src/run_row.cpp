// The SELECT list of a run and the reader that fills a RunRecord from it by column name.
#include "run_row.h"

#include <fmt/format.h>

namespace asg::registry_store {

std::string run_columns(RunTexts texts) {
  // The stored config text lives in run_configs since schema 5 (runs.config_text for older rows).
  const std::string config_text = texts == RunTexts::All
                                      ? "COALESCE((SELECT c.config_text FROM run_configs c WHERE c.run_id = runs.id), runs.config_text)"
                                      : "''";
  const std::string host_json = texts == RunTexts::All ? "host_json" : "''";
  const std::string protocol_json = texts == RunTexts::WithoutLargeTextsOrProtocol ? "''" : "protocol_json";
  return fmt::format(
      "id, name, experiment_path, benchmark, rank_by, status, created_ms, started_ms, ended_ms, config_hash, "
      "{} AS config_text, seed, git_commit, git_dirty, {} AS host_json, run_dir, parent_run_id, attempt, error, method_hash, "
      "protocol_hash, {} AS protocol_json, resumed_from, role, deleted_ms, seedless_hash",
      config_text, host_json, protocol_json);
}

RunReader::RunReader(const Statement& s)
    : s_(s),
      id_(s.column("id")),
      name_(s.column("name")),
      experiment_path_(s.column("experiment_path")),
      benchmark_(s.column("benchmark")),
      rank_by_(s.column("rank_by")),
      status_(s.column("status")),
      created_ms_(s.column("created_ms")),
      started_ms_(s.column("started_ms")),
      ended_ms_(s.column("ended_ms")),
      config_hash_(s.column("config_hash")),
      config_text_(s.column("config_text")),
      seed_(s.column("seed")),
      git_commit_(s.column("git_commit")),
      git_dirty_(s.column("git_dirty")),
      host_json_(s.column("host_json")),
      run_dir_(s.column("run_dir")),
      parent_run_id_(s.column("parent_run_id")),
      attempt_(s.column("attempt")),
      error_(s.column("error")),
      method_hash_(s.column("method_hash")),
      protocol_hash_(s.column("protocol_hash")),
      protocol_json_(s.column("protocol_json")),
      resumed_from_(s.column("resumed_from")),
      role_(s.column("role")),
      deleted_ms_(s.column("deleted_ms")),
      seedless_hash_(s.column("seedless_hash")) {}

RunRecord RunReader::read() const {
  const Statement& s = s_;
  RunRecord r;
  r.id = s.text(id_);
  r.name = s.text(name_);
  r.experiment_path = s.text(experiment_path_);
  r.benchmark = s.text(benchmark_);
  r.rank_by = s.text(rank_by_);
  r.status = parse_status(s.text(status_));
  r.created_ms = s.integer(created_ms_);
  if (!s.is_null(started_ms_)) r.started_ms = s.integer(started_ms_);
  if (!s.is_null(ended_ms_)) r.ended_ms = s.integer(ended_ms_);
  r.config_hash = s.text(config_hash_);
  r.config_text = s.text(config_text_);
  r.seed = s.integer(seed_);
  r.git_commit = s.text(git_commit_);
  r.git_dirty = s.integer(git_dirty_) != 0;
  r.host_json = s.text(host_json_);
  r.run_dir = s.text(run_dir_);
  if (!s.is_null(parent_run_id_)) r.parent_run_id = s.text(parent_run_id_);
  r.attempt = s.integer(attempt_);
  r.error = s.text(error_);
  r.method_hash = s.text(method_hash_);
  r.protocol_hash = s.text(protocol_hash_);
  r.protocol_json = s.text(protocol_json_);
  if (!s.is_null(resumed_from_)) r.resumed_from = s.text(resumed_from_);
  r.role = parse_run_role(s.text(role_));
  if (!s.is_null(deleted_ms_)) r.deleted_ms = s.integer(deleted_ms_);
  r.seedless_hash = s.text(seedless_hash_);
  return r;
}

}  // namespace asg::registry_store
