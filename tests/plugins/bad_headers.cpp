// Test plugins whose header the loader must refuse before calling anything else in them:
//   ASG_BAD_API        a newer plugin API major;
//   ASG_BAD_TORCH      another torch in the build fingerprint;
//   ASG_BAD_SDK_HASH   the same plugin API version but other SDK headers (an unversioned header edit).
// And one it must refuse after calling it:
//   ASG_THROWING_FACTORIES  factories() throws while the library lists its plugins.
#include "asg/plugin.h"

namespace {
[[maybe_unused]] std::vector<asg::Factory> no_factories() { return {}; }
[[maybe_unused]] std::vector<asg::Factory> throwing_factories() {
  throw std::runtime_error("could not read my model table");
}

#if defined(ASG_BAD_API)
const asg::PluginHeader header{asg::kPluginApiMajor + 1, 0, sizeof(asg::PluginHeader), ASG_BUILD_FINGERPRINT, &no_factories,
                               ASG_VERSION};
#elif defined(ASG_BAD_TORCH)
const asg::PluginHeader header{asg::kPluginApiMajor, asg::kPluginApiMinor, sizeof(asg::PluginHeader),
                               asg::BuildFingerprint{"0.4.1", ASG_COMPILER_ID, _GLIBCXX_USE_CXX11_ABI, __cplusplus,
                                                     ASG_SDK_HEADERS_SHA256},
                               &no_factories, ASG_VERSION};
#elif defined(ASG_BAD_SDK_HASH)
const asg::PluginHeader header{asg::kPluginApiMajor, asg::kPluginApiMinor, sizeof(asg::PluginHeader),
                               asg::BuildFingerprint{ASG_TORCH_VERSION_STRING, ASG_COMPILER_ID, _GLIBCXX_USE_CXX11_ABI,
                                                     __cplusplus,
                                                     "0000000000000000000000000000000000000000000000000000000000000bad"},
                               &no_factories, ASG_VERSION};
#elif defined(ASG_THROWING_FACTORIES)
const asg::PluginHeader header{asg::kPluginApiMajor, asg::kPluginApiMinor, sizeof(asg::PluginHeader), ASG_BUILD_FINGERPRINT,
                               &throwing_factories, ASG_VERSION};
#endif
const asg::PluginHeader* entry() { return &header; }
}  // namespace

BOOST_DLL_ALIAS(entry, asg_plugin_entry)
