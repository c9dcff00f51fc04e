// The "kind header" of a kind only the tests know: an interface, its context and its traits.
#pragma once

#include <cstdint>

#include "asg/plugin_kind.h"

namespace asg::testing {

struct WidgetContext {
  int64_t base = 0;
};

class Widget {
 public:
  virtual ~Widget() = default;
  virtual int64_t apply(int64_t x) const = 0;
};

}  // namespace asg::testing

template <>
struct asg::PluginKindTraits<asg::testing::Widget> {
  static constexpr const char* name = "widget";
  using Context = asg::testing::WidgetContext;
};
