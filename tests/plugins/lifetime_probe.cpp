// Test plugin: a dataset whose code must stay mapped while any object it created lives. Built with
// -fno-gnu-unique so that dlclose really unmaps it (GCC's STB_GNU_UNIQUE symbols would otherwise make
// the library NODELETE and hide lifetime bugs). ASG_PROBE_NAME lets the same source build the
// duplicate-name library.
#include "asg/kinds/dataset.h"
#include "asg/plugin.h"

#ifndef ASG_PROBE_NAME
#define ASG_PROBE_NAME "lifetime_probe"
#endif

namespace {
class Probe final : public asg::Dataset {
 public:
  explicit Probe(int64_t frames) : frames_(frames) {}
  asg::DatasetInfo info() const override { return asg::DatasetInfo{frames_, 2, 2, 1.0, {}, {}}; }
  int64_t size(asg::Split) const override { return 1; }
  asg::Sticker get(asg::Split, int64_t index) const override {
    // An error thrown by plugin code must stay usable after the library is gone (see plugin_catalog_test).
    if (index != 0) throw asg::data_error("lifetime_probe: index " + std::to_string(index) + " (valid: 0)");
    return asg::Sticker{"probe", torch::zeros({frames_, 4, 2, 2}), {}, "", {}, {}};
  }

 private:
  int64_t frames_;
};
}  // namespace

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Dataset>(ASG_PROBE_NAME, "0.1.0", "test plugin: library lifetime probe",
                                                   std::vector<asg::ParamSpec>{asg::int_param("frames", 3, "frames")},
                                                   [](const asg::Params& p) { return std::make_shared<Probe>(p.integer("frames")); }))
