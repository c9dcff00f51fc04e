// The evaluator stage: sampling [eval] num_samples clips and feeding the metrics, with the real side of
// distribution metrics cached on disk (StatisticsCache).
// Host-only (plugins never include it); run_experiment (asg/runner.h) composes the stages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "asg/build.h"
#include "asg/experiment.h"
#include "asg/registry.h"
#include "asg/stages/batch_source.h"
#include "asg/stages/recorder.h"
#include "asg/stages/sample_writer.h"
#include "asg/trainer.h"

namespace asg {

// The real side of distribution metrics (Metric::real_state) on disk, so that a second evaluation under the
// same protocol reads it instead of streaming the real set through the extractor again. One entry per
// metric: <dir>/<key>.pt (the state) and <key>.json (what the key was made of, for people). The key is the
// sha256 of: the protocol hash, the metric's plugin, version and parameters (extractor files by sha256),
// the dataset's plugin, version and parameters (manifest files by sha256), the split and the number of
// real clips. Entries are written atomically; an unreadable one counts as a miss and is rewritten.
class StatisticsCache {
 public:
  explicit StatisticsCache(std::filesystem::path dir);  // empty: no cache (every evaluation computes)
  static std::string key_for(const Experiment& experiment, const PluginSlot& metric, int64_t num_real);
  static std::string description_for(const Experiment& experiment, const PluginSlot& metric, int64_t num_real);
  std::optional<MetricState> load(const std::string& key) const;
  void store(const std::string& key, const MetricState& state, const std::string& description) const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// First gives every metric that uses a real set its real side: from `cache`, or by streaming [eval]
// num_real clips of the eval split (in order, wrapping; 0 = num_samples) through update_real() and caching
// the state. Then samples [eval] num_samples clips prompted by the eval split's captions (in order,
// wrapping), feeds every metric and the sample writer, and returns the metrics' results. A metric key must
// be '<metric>' or '<metric>.<part>' (asg::Error(Internal) otherwise).
class Evaluator {
 public:
  // health: skips eval-split samples that fail to decode (the next one in order takes their place).
  Evaluator(const Experiment& experiment, BuiltExperiment& built, DiffusionTrainer& trainer, RunLog& log, uint64_t seed,
            DataHealth* health = nullptr, StatisticsCache cache = StatisticsCache({}));
  std::vector<ResultValue> run(SampleWriter& samples, int64_t at_step);

 private:
  const Experiment& experiment_;
  BuiltExperiment& built_;
  DiffusionTrainer& trainer_;
  RunLog& log_;
  uint64_t seed_;
  DataHealth* health_;
  StatisticsCache cache_;

  // The eval split's sample at position *next (in order, wrapping), skipping bad ones; advances *next.
  Sticker next_reference(int64_t* next, int64_t* skipped_in_a_row);
  void prepare_real_side();
};

}  // namespace asg
