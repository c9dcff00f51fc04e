// Test plugins that lie about how they were built: a newer plugin API (ASG_BAD_API) or another torch
// (ASG_BAD_TORCH). The loader must refuse them before calling anything else in them.
#include "asg/plugin.h"

namespace {
std::vector<asg::Factory> no_factories() { return {}; }

#if defined(ASG_BAD_API)
const asg::PluginHeader header{asg::kPluginApiMajor + 1, 0, sizeof(asg::PluginHeader), ASG_BUILD_FINGERPRINT, &no_factories};
#elif defined(ASG_BAD_TORCH)
const asg::PluginHeader header{asg::kPluginApiMajor, asg::kPluginApiMinor, sizeof(asg::PluginHeader),
                               asg::BuildFingerprint{"0.4.1", ASG_COMPILER_ID, _GLIBCXX_USE_CXX11_ABI, __cplusplus},
                               &no_factories};
#endif
const asg::PluginHeader* entry() { return &header; }
}  // namespace

BOOST_DLL_ALIAS(entry, asg_plugin_entry)
