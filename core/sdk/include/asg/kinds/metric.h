// Metric plugins: score generated stickers.
//
// Contract
// - The core creates a metric after the dataset, so MetricContext describes the data. A metric that
//   cannot work with it (say it needs caption labels the dataset lacks) throws asg::Error(Config) from
//   its factory, naming what it needs. The core creates every metric once before training, to refuse
//   such combinations before anything is recorded, then drops them and creates them again after training
//   on the evaluation device (MetricContext::device): an extractor never holds memory during training.
// - Clips are straight RGBA in [0, 1], float32 CPU [B, T, 4, H, W]; a metric moves them to its device.
// - Real side (distribution metrics): uses_real_set() returns true. The core then either streams the
//   protocol's real set through update_real() (batches of stickers in order, each with its frame_valid and
//   frame durations, so a metric can apply its protocol's rule for short stickers; first_index = index of
//   the batch's first sticker in that set) and stores real_state() in the statistics cache, or, when the cache already holds
//   the state for the same protocol, dataset, split, number of real clips and metric (name, version,
//   parameters, extractor files by sha256), hands it to load_real_state() instead. Either way this
//   happens before the first update(). real_state() holds everything result() needs of the real side.
// - Generated side: update() receives batches of generated clips, streamed (never all at once), with the
//   sticker whose caption prompted each clip (same order; its frames are the clip's reference, its labels
//   what the caption asked for) and the index of the batch's first clip in the evaluation set, for
//   messages ("generated clip 17: its features contain NaN").
// - Several workers or ranks: state() is the generated side's accumulated state as named tensors, and
//   merge() adds another instance's state; results after merging equal those of one instance fed every
//   batch (up to float rounding). The conformance suite checks this for every metric.
// - result() returns one or more values. Every key is '<metric>' or '<metric>.<part>', stable across
//   versions of the metric (bump the factory version if its meaning changes), and says which way is
//   better. NaN or Inf never becomes a value: a metric that would produce one throws asg::Error(Data)
//   naming the sample.
// - A metric is deterministic: the same clips give the same numbers.
// - The README of every metric states the convention it follows (see docs/metrics.md).
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "asg/kinds/dataset.h"

namespace asg {

struct MetricContext {
  DatasetInfo data;
  std::string dataset_name;
  torch::Device device = torch::kCPU;  // where the metric runs its extractor
};

struct MetricValue {
  std::string key;  // e.g. "caption_acc", "caption_acc.colour"
  double value = 0;
  bool higher_is_better = true;
};

// Named tensors: what the statistics cache stores and what ranks exchange.
using MetricState = std::map<std::string, torch::Tensor>;

class Metric {
 public:
  virtual ~Metric() = default;

  // Real side: only for metrics that compare with the protocol's real set.
  virtual bool uses_real_set() const { return false; }
  virtual void update_real(const std::vector<Sticker>& /*real*/, int64_t /*first_index*/) {}
  virtual MetricState real_state() const { return {}; }
  virtual void load_real_state(const MetricState& /*state*/) {}

  // Generated side.
  virtual void update(const torch::Tensor& generated, const std::vector<Sticker>& prompts, int64_t first_index) = 0;  // required
  virtual MetricState state() const = 0;                 // required
  virtual void merge(const MetricState& other) = 0;      // required
  virtual std::vector<MetricValue> result() = 0;         // required
};

template <>
struct PluginKindTraits<Metric> {
  static constexpr const char* name = "metric";
  using Context = MetricContext;
};

}  // namespace asg
