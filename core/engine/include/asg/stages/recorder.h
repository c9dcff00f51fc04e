// The recorder stage: where the other stages report (RunLog), and what a run (RunRecorder) or an `asg eval`
// result set (EvalRecorder) writes about itself: registry rows, its folder, log, metric points, artifacts.
// Host-only (plugins never include it); run_experiment (asg/runner.h) composes the stages.
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "asg/experiment.h"
#include "asg/kinds/dataset.h"
#include "asg/registry.h"
#include "asg/run_options.h"
#include "asg/stages/runtime_settings.h"

namespace asg {

// Where the stages report: console and log lines, metric points, signs of life, and the files they write.
// RunRecorder is a run's; EvalRecorder is a result set's, added to a finished run by `asg eval`.
class RunLog {
 public:
  virtual ~RunLog() = default;
  // The folder samples/ and the log go into: the run's folder, or <run folder>/evals/<set id>.
  virtual const std::filesystem::path& output_dir() const = 0;
  virtual void info(const std::string& line) = 0;       // console and the log file
  virtual void file_only(const std::string& line) = 0;  // the log file only
  virtual void metric(const std::string& key, int64_t step, double value) = 0;
  virtual void flush() = 0;
  virtual void heartbeat() = 0;
  virtual void artifact(const std::filesystem::path& file) = 0;  // a file inside the run's folder
};

// Everything a run writes about itself. Constructing it records the run (QUEUED, then RUNNING once its
// folder, config.toml, run.log and plugin rows exist), so construct it only after the experiment built.
class RunRecorder : public RunLog {
 public:
  RunRecorder(const Experiment& experiment, const RunOptions& options, const RuntimeSettings& settings);
  RunRecorder(const RunRecorder&) = delete;
  RunRecorder& operator=(const RunRecorder&) = delete;

  const std::string& run_id() const { return run_id_; }
  const std::filesystem::path& run_dir() const { return run_dir_; }
  const std::filesystem::path& output_dir() const override { return run_dir_; }
  int64_t attempt() const { return attempt_; }

  void info(const std::string& line) override;       // console and run.log
  void file_only(const std::string& line) override;  // run.log only
  // Buffered; flush() writes the buffer in one transaction (and is a heartbeat).
  void metric(const std::string& key, int64_t step, double value) override;
  void flush() override;
  void heartbeat() override;
  void artifact(const std::filesystem::path& file) override;  // inside run_dir()
  // An earlier attempt's training history up to `up_to_step`, so every step appears once in this run.
  void continue_history(const std::string& earlier_run, int64_t up_to_step);
  // One line of data_skipped.tsv (id, reason), written at once; recorded as an artifact at the end.
  void skipped_sample(const RejectedSample& sample);
  static constexpr const char* kSkippedFile = "data_skipped.tsv";
  // Results, metrics.json and the FINISHED mark.
  void finish(const std::vector<ResultValue>& results);
  // KILLED for an interrupt, FAILED otherwise, keeping whatever was logged. Never throws.
  void fail(const std::exception& error) noexcept;

 private:
  void record_skipped_samples();
  Registry registry_;
  std::string run_id_;
  std::filesystem::path run_dir_;
  int64_t attempt_ = 1;
  std::vector<MetricPoint> pending_;
  std::ofstream log_;
};

// A result set of a FINISHED run: the run's model evaluated under another protocol without retraining (asg
// eval). Constructing it records the set as RUNNING; its samples and eval.log go to <run folder>/evals/<set id>/
// (recorded as the run's artifacts), finish() records the values and FINISHED, fail() FAILED or KILLED. Metric
// points are not history here: the set's values are its results.
class EvalRecorder : public RunLog {
 public:
  EvalRecorder(const Experiment& experiment, const RunRecord& run, const std::filesystem::path& registry_path,
               const std::filesystem::path& run_dir, const RuntimeSettings& settings);
  EvalRecorder(const EvalRecorder&) = delete;
  EvalRecorder& operator=(const EvalRecorder&) = delete;

  int64_t set_id() const { return set_id_; }
  const std::filesystem::path& output_dir() const override { return output_dir_; }
  void info(const std::string& line) override;
  void file_only(const std::string& line) override;
  void metric(const std::string&, int64_t, double) override {}
  void flush() override {}
  void heartbeat() override {}
  void artifact(const std::filesystem::path& file) override;
  void finish(const std::vector<ResultValue>& results);
  void fail(const std::exception& error) noexcept;

 private:
  Registry registry_;
  std::string run_id_;
  std::filesystem::path run_dir_, output_dir_;
  int64_t set_id_ = 0;
  std::ofstream log_;
};

}  // namespace asg
