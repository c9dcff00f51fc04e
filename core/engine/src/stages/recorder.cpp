#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

#include "asg/stages/recorder.h"
#include "asg/git_state.h"
#include "asg/files.h"
#include "asg/hash.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

NewRun new_run_record(const Experiment& exp, const RunOptions& options, const RuntimeSettings& settings) {
  GitState git = git_state(exp.file.parent_path());
  NewRun record;
  record.name = exp.name;
  record.experiment_path = exp.file.string();
  record.benchmark = exp.benchmark.str("name");
  record.rank_by = exp.benchmark.str("rank_by");
  record.config_hash = exp.config_hash;
  record.config_text = exp.resolved_toml;
  record.method_hash = exp.method_hash;
  record.protocol_hash = exp.protocol_hash;
  record.protocol_json = exp.protocol_json;
  record.seed = exp.runtime.integer("seed");
  record.git_commit = git.commit;
  record.git_dirty = git.dirty;
  record.host_json = environment_json(settings);
  record.parent_run_id = options.parent_run_id;
  record.role = options.role;
  if (options.resume) {
    record.parent_run_id = options.resume->run_id;
    record.attempt = options.resume->attempt + 1;
    record.resumed_from = options.resume->checkpoint.string();
  }
  return record;
}

// What both recorders do with a line and a file: the console and the log file, or the log file only; a file in
// the run's folder recorded as the run's artifact (path relative to the folder, sha256, size).
void print_and_log(std::ofstream& log, const std::string& line) {
  fmt::print("{}\n", line);
  std::fflush(stdout);
  if (log.is_open()) log << line << '\n' << std::flush;
}

void log_only(std::ofstream& log, const std::string& line) {
  if (log.is_open()) log << line << '\n' << std::flush;
}

void record_artifact(Registry& registry, const std::string& run_id, const fs::path& run_dir, const fs::path& file) {
  registry.add_artifact(run_id, Artifact{fs::relative(file, run_dir).string(), sha256_file(file),
                                         static_cast<int64_t>(fs::file_size(file))});
}

}  // namespace

RunRecorder::RunRecorder(const Experiment& exp, const RunOptions& options, const RuntimeSettings& settings)
    : registry_(options.registry_path) {
  NewRun record = new_run_record(exp, options, settings);
  attempt_ = record.attempt;
  run_id_ = registry_.create_run(record);
  run_dir_ = options.runs_dir / run_id_;
  try {
    std::vector<PluginUse> uses;
    for (const auto& slot : exp.slots)
      uses.push_back(PluginUse{slot.section, slot.kind, slot.plugin, slot.record->factory.version,
                               slot.record->library_path.string(), slot.record->library_sha256});
    registry_.record_plugins(run_id_, uses);
    fs::create_directories(run_dir_ / "checkpoints");
    fs::create_directories(run_dir_ / "samples");
    log_.open(run_dir_ / "run.log", std::ios::app);
    write_text_file_atomic(run_dir_ / "config.toml", exp.resolved_toml);
    registry_.mark_running(run_id_);
    for (const auto& u : uses) file_only(fmt::format("plugin {} = {} {} ({})", u.slot, u.name, u.version, u.library));
    file_only(fmt::format("method {} | protocol {} | environment {}", exp.method_hash, exp.protocol_hash, record.host_json));
  } catch (const std::exception& e) {
    fail(e);
    throw;
  }
}

void RunRecorder::info(const std::string& line) { print_and_log(log_, line); }

void RunRecorder::file_only(const std::string& line) { log_only(log_, line); }

void RunRecorder::metric(const std::string& key, int64_t step, double value) {
  pending_.push_back(MetricPoint{key, step, value, now_ms()});
}

void RunRecorder::flush() {
  registry_.log_metrics(run_id_, pending_);  // with no points, still a heartbeat
  pending_.clear();
}

void RunRecorder::heartbeat() { registry_.heartbeat(run_id_); }

void RunRecorder::artifact(const fs::path& file) { record_artifact(registry_, run_id_, run_dir_, file); }

void RunRecorder::continue_history(const std::string& earlier_run, int64_t up_to_step) {
  std::vector<MetricPoint> earlier;
  for (const auto& p : registry_.metric_history(earlier_run))
    if (p.step <= up_to_step && p.key.rfind("train/", 0) == 0) earlier.push_back(p);
  registry_.log_metrics(run_id_, earlier);
}

void RunRecorder::skipped_sample(const RejectedSample& sample) {
  const fs::path file = run_dir_ / kSkippedFile;
  const bool first = !fs::exists(file);
  std::string reason = sample.reason;
  std::replace_if(reason.begin(), reason.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  std::ofstream out(file, std::ios::app);
  if (first) out << "id\treason\n";
  out << sample.id << '\t' << reason << '\n';
  out.flush();  // each line as it happens: a run that dies keeps its report
  file_only(fmt::format("data: skipped {}: {}", sample.id, reason));
}

void RunRecorder::record_skipped_samples() {
  if (fs::exists(run_dir_ / kSkippedFile)) artifact(run_dir_ / kSkippedFile);
}

void RunRecorder::finish(const std::vector<ResultValue>& results) {
  flush();
  record_skipped_samples();
  registry_.set_results(run_id_, results);
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& r : results) metrics[r.key] = r.value;
  write_text_file_atomic(run_dir_ / "metrics.json", metrics.dump(2) + "\n");
  artifact(run_dir_ / "metrics.json");
  artifact(run_dir_ / "config.toml");
  registry_.mark_ended(run_id_, RunStatus::Finished);
  info(fmt::format("run {} FINISHED; outputs in {}", run_id_, run_dir_.string()));
}

void RunRecorder::fail(const std::exception& e) noexcept {
  const auto* err = dynamic_cast<const Error*>(&e);
  const bool killed = err && err->kind() == ErrorKind::Interrupted;
  try {
    flush();  // keep whatever history was logged
    record_skipped_samples();
    registry_.mark_ended(run_id_, killed ? RunStatus::Killed : RunStatus::Failed, e.what());
    file_only(fmt::format("run {} {}: {}", run_id_, killed ? "KILLED" : "FAILED", e.what()));
  } catch (const std::exception& inner) {
    fmt::print(stderr, "asg: could not record the end of run {}: {}\n", run_id_, inner.what());
  }
}

// ---- result sets (asg eval) ---------------------------------------------------------------------------

EvalRecorder::EvalRecorder(const Experiment& exp, const RunRecord& run, const fs::path& registry_path, const fs::path& run_dir,
                           const RuntimeSettings& settings)
    : registry_(registry_path), run_id_(run.id), run_dir_(run_dir) {
  NewResultSet set;
  set.run_id = run.id;
  set.benchmark = exp.benchmark.str("name");
  set.rank_by = exp.benchmark.str("rank_by");
  set.protocol_hash = exp.protocol_hash;
  set.protocol_json = exp.protocol_json;
  set.config_text = exp.resolved_toml;
  set.git_commit = git_state(fs::current_path()).commit;
  set.host_json = environment_json(settings);
  // The folder is named after the set's id, which the registry gives; a row first, then the folder.
  set_id_ = registry_.begin_result_set(set);
  output_dir_ = run_dir_ / "evals" / std::to_string(set_id_);
  try {
    fs::create_directories(output_dir_ / "samples");
    log_.open(output_dir_ / "eval.log", std::ios::app);
    write_text_file_atomic(output_dir_ / "config.toml", exp.resolved_toml);
    file_only(fmt::format("result set {} of run {} | benchmark {} | method {} | protocol {} | environment {}", set_id_, run_id_,
                          set.benchmark, exp.method_hash, exp.protocol_hash, set.host_json));
  } catch (const std::exception& e) {
    fail(e);
    throw;
  }
}

void EvalRecorder::info(const std::string& line) { print_and_log(log_, line); }

void EvalRecorder::file_only(const std::string& line) { log_only(log_, line); }

void EvalRecorder::artifact(const fs::path& file) { record_artifact(registry_, run_id_, run_dir_, file); }

void EvalRecorder::finish(const std::vector<ResultValue>& results) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& r : results) metrics[r.key] = r.value;
  write_text_file_atomic(output_dir_ / "metrics.json", metrics.dump(2) + "\n");
  artifact(output_dir_ / "metrics.json");
  artifact(output_dir_ / "config.toml");
  registry_.end_result_set(set_id_, RunStatus::Finished, results);
  info(fmt::format("result set {} of run {} FINISHED; outputs in {}", set_id_, run_id_, output_dir_.string()));
}

void EvalRecorder::fail(const std::exception& e) noexcept {
  const auto* err = dynamic_cast<const Error*>(&e);
  const bool killed = err && err->kind() == ErrorKind::Interrupted;
  try {
    registry_.end_result_set(set_id_, killed ? RunStatus::Killed : RunStatus::Failed, {}, e.what());
    file_only(fmt::format("result set {} {}: {}", set_id_, killed ? "KILLED" : "FAILED", e.what()));
  } catch (const std::exception& inner) {
    fmt::print(stderr, "asg: could not record the end of result set {} of run {}: {}\n", set_id_, run_id_, inner.what());
  }
}

}  // namespace asg
