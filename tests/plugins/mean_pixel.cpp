// Test plugin: a metric whose value is the mean of the generated clips, built twice: as it is, and with
// ASG_ALTERED, which shifts the value by 1/8. The reproduction test swaps one library for the other to check
// that `asg reproduce` notices a changed plugin and, when told to go ahead, fails the metric.
// With ASG_MARKER it is the loading policy's probe: opening the library (running its static constructors) writes
// the file $ASG_TEST_MARKER, so a test sees whether ASG Lab opened it at all.
#include "asg/kinds/metric.h"
#include "asg/plugin.h"

#ifdef ASG_MARKER
#include <cstdlib>
#include <fstream>
#endif

namespace {

#ifdef ASG_MARKER
[[maybe_unused]] const bool kMarkerWritten = [] {
  if (const char* marker = std::getenv("ASG_TEST_MARKER")) std::ofstream(marker) << "opened\n";
  return true;
}();
#endif

#ifdef ASG_ALTERED
constexpr double kShift = 0.125;
#else
constexpr double kShift = 0.0;
#endif

class MeanPixel final : public asg::Metric {
 public:
  void update(const torch::Tensor& generated, const std::vector<asg::Sticker>&, int64_t) override {
    sum_ += generated.to(torch::kFloat64).sum().item<double>();
    count_ += static_cast<double>(generated.numel());
  }
  asg::MetricState state() const override {
    return {{"sum", torch::tensor(sum_, torch::kFloat64)}, {"count", torch::tensor(count_, torch::kFloat64)}};
  }
  void merge(const asg::MetricState& other) override {
    sum_ += other.at("sum").item<double>();
    count_ += other.at("count").item<double>();
  }
  std::vector<asg::MetricValue> result() override { return {{"mean_pixel", (count_ > 0 ? sum_ / count_ : 0.0) + kShift, true}}; }

 private:
  double sum_ = 0, count_ = 0;
};

}  // namespace

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>("mean_pixel", "1.0.0", "test plugin: the mean of the generated clips",
                                                  std::vector<asg::ParamSpec>{},
                                                  [](const asg::Params&, const asg::MetricContext&) {
                                                    return std::make_shared<MeanPixel>();
                                                  }))
