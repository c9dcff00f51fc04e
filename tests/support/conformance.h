// Conformance suites: one GoogleTest value-parameterised suite per plugin kind, instantiated over every
// plugin of that kind the build (and $ASG_PLUGIN_PATH) provides. A new plugin is held to its kind's
// contract the moment it is built; no test lists plugins.
//
//   INSTANTIATE_TEST_SUITE_P(Build, DatasetConformance, ::testing::ValuesIn(asg::testing::plugins_of_kind("dataset")),
//                            asg::testing::plugin_test_name);
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "asg/plugin_catalog.h"

namespace asg::testing {

inline const PluginCatalog& build_catalog() {
  static const PluginCatalog catalog = PluginCatalog::discover();
  return catalog;
}

inline std::vector<std::string> plugins_of_kind(const std::string& kind) { return build_catalog().names(kind); }

inline Params defaults_of(const std::string& kind, const std::string& name) {
  return default_params(name, build_catalog().find(kind, name)->factory.params);
}

inline std::string plugin_test_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

}  // namespace asg::testing
