// Drives a metric the way the evaluator does: the real set through update_real() first (for metrics that
// use one), then the generated clips with the stickers that prompted them, then result().
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "asg/kinds/metric.h"

namespace asg::testing {

// `real` is the real set and, clip for clip, the prompts of `generated`.
inline std::vector<MetricValue> metric_values(Metric& metric, const torch::Tensor& generated, const std::vector<Sticker>& real) {
  if (metric.uses_real_set()) metric.update_real(real, 0);
  metric.update(generated, real, 0);
  return metric.result();
}

inline std::map<std::string, double> metric_results(Metric& metric, const torch::Tensor& generated,
                                                    const std::vector<Sticker>& real) {
  std::map<std::string, double> out;
  for (const auto& v : metric_values(metric, generated, real)) out[v.key] = v.value;
  return out;
}

}  // namespace asg::testing
