// Reaching the plugin a plugin test links directly (its objects, not the .so): every plugin library
// exports asg_plugin_entry through BOOST_DLL_ALIAS, which is a data symbol holding the entry's address.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "asg/error.h"
#include "asg/plugin.h"

extern "C" const void* asg_plugin_entry;

namespace asg::testing {

inline const std::vector<Factory>& factories_under_test() {
  static const std::vector<Factory> factories = [] {
    auto entry = reinterpret_cast<PluginEntry*>(const_cast<void*>(asg_plugin_entry));
    return entry()->factories();
  }();
  return factories;
}

inline const Factory& factory_under_test(const std::string& name) {
  for (const auto& f : factories_under_test())
    if (f.name == name) return f;
  throw std::runtime_error("no factory " + name + " in the plugin under test");
}

// The factory's defaults with some values replaced.
inline Params params_for(const std::string& name, const std::map<std::string, ParamValue>& overrides = {}) {
  const Factory& f = factory_under_test(name);
  Params defaults = default_params(name, f.params);
  auto values = defaults.values();
  for (const auto& [k, v] : overrides) {
    if (!values.count(k)) throw std::runtime_error("test sets undeclared parameter " + k);
    values[k] = v;
  }
  return Params(name, values);
}

// Creates the plugin through its factory's type-erased create function, as the loader does.
template <typename Interface>
std::shared_ptr<Interface> make_under_test(const std::string& name, const std::map<std::string, ParamValue>& overrides,
                                           const typename PluginKindTraits<Interface>::Context& context = {}) {
  const Factory& f = factory_under_test(name);
  if (f.kind != PluginKindTraits<Interface>::name)
    throw std::runtime_error("plugin " + name + " is a " + f.kind + ", not a " + PluginKindTraits<Interface>::name);
  return std::static_pointer_cast<Interface>(f.create(params_for(name, overrides), &context));
}

// What the factory of plugin `name` refuses with these parameters: the message of its asg::Error(Config), or
// "" after a test failure when it builds (or throws anything else).
template <typename Interface>
std::string config_error_of(const std::string& name, const std::map<std::string, ParamValue>& overrides,
                            const typename PluginKindTraits<Interface>::Context& context = {}) {
  try {
    make_under_test<Interface>(name, overrides, context);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected " << name << " to refuse its parameters with a config error";
  return "";
}

}  // namespace asg::testing
