// Test plugin: a metric that fails when results are computed, i.e. after training and sampling, to
// check that a failing run is recorded FAILED and keeps its metric history.
#include "asg/kinds/metric.h"
#include "asg/plugin.h"

namespace {
class FailOnCompute final : public asg::Metric {
 public:
  void update(const torch::Tensor&, const std::vector<asg::Sticker>&, int64_t) override {}
  asg::MetricState state() const override { return {}; }
  void merge(const asg::MetricState&) override {}
  std::vector<asg::MetricValue> result() override { throw asg::data_error("fail_on_compute: deliberate failure for the test"); }
};
}  // namespace

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>("fail_on_compute", "0.1.0", "test plugin: throws in compute()",
                                                  std::vector<asg::ParamSpec>{},
                                                  [](const asg::Params&, const asg::MetricContext&) {
                                                    return std::make_shared<FailOnCompute>();
                                                  }))
