// A plugin of a kind the core has never heard of: an interface and its PluginKindTraits, written here
// as a new kind header would be. Nothing in asg/plugin.h or the loader knows "widget", yet the catalog
// describes it and creates it by its kind's name: adding a kind changes no binary layout.
#include "new_kind.h"

#include "asg/plugin.h"

namespace {
class Doubler final : public asg::testing::Widget {
 public:
  explicit Doubler(const asg::Params& p, const asg::testing::WidgetContext& ctx) : offset_(p.integer("offset") + ctx.base) {}
  int64_t apply(int64_t x) const override { return 2 * x + offset_; }

 private:
  int64_t offset_;
};
}  // namespace

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::testing::Widget>(
    "doubler", "1.0.0", "test plugin: a kind the core does not know",
    std::vector<asg::ParamSpec>{asg::int_param("offset", 1, "added after doubling")},
    [](const asg::Params& p, const asg::testing::WidgetContext& ctx) { return std::make_shared<Doubler>(p, ctx); }))
