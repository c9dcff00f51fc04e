// Metric plugins: score generated stickers.
//
// Contract
// - The core creates a metric after the dataset, so MetricContext describes the data. A metric that
//   cannot work with it (say it needs caption labels the dataset lacks) throws asg::Error(Config) from
//   its factory, naming what it needs: that happens before any training.
// - update() is called with batches of generated clips, straight RGBA in [0, 1], float32 CPU
//   [B, T, 4, H, W], and for each the reference sticker whose caption prompted it (same order).
//   Reference stickers are also the "real" set for distribution metrics.
// - compute() returns one or more values. Every key is stable across versions of the metric (bump
//   the factory version if its meaning changes) and says which way is better.
// - A metric is deterministic: the same clips give the same numbers.
// - The README of every metric states the convention it follows (see docs/metrics.md).
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <string>
#include <vector>

#include "asg/kinds/dataset.h"

namespace asg {

struct MetricContext {
  DatasetInfo data;
  std::string dataset_name;
};

struct MetricValue {
  std::string key;  // e.g. "caption_acc", "caption_acc.colour"
  double value = 0;
  bool higher_is_better = true;
};

class Metric {
 public:
  virtual ~Metric() = default;
  virtual void update(const torch::Tensor& generated, const std::vector<Sticker>& references) = 0;  // required
  virtual std::vector<MetricValue> compute() = 0;                                                     // required
};

template <>
struct PluginKindTraits<Metric> {
  static constexpr const char* name = "metric";
  using Context = MetricContext;
};

}  // namespace asg
