// A plugin built against plugin API 3.0: its header is the 3.0 layout, frozen here as it shipped, which ends
// at `factories` (3.1 appended `sdk_version`). Under 3.1 it loaded (an older minor, read up to its
// struct_size). 4.0 changed the metric interface, so a 3.x plugin must now be refused, naming both versions,
// before anything of it is called.
#include "asg/kinds/dataset.h"
#include "asg/plugin.h"

namespace {

struct PluginHeaderV3_0 {  // asg/plugin.h at plugin API 3.0
  uint32_t api_major;
  uint32_t api_minor;
  uint32_t struct_size;
  asg::BuildFingerprint fingerprint;
  std::vector<asg::Factory> (*factories)();
};

class TwoFrames final : public asg::Dataset {
 public:
  asg::DatasetInfo info() const override { return {2, 4, 4, 8.0, {}, {}}; }
  int64_t size(asg::Split) const override { return 1; }
  asg::Sticker get(asg::Split, int64_t) const override {
    return {"only", torch::zeros({2, 4, 4, 4}), {125, 125}, "an old plugin", {}, {}};
  }
};

std::vector<asg::Factory> factories() {
  return {asg::make_factory<asg::Dataset>("older_minor", "0.3.0", "test plugin: built against plugin API 3.0", {},
                                          [](const asg::Params&) { return std::make_shared<TwoFrames>(); })};
}

const PluginHeaderV3_0 header{3, 0, sizeof(PluginHeaderV3_0),
                              asg::BuildFingerprint{ASG_TORCH_VERSION_STRING, ASG_COMPILER_ID, _GLIBCXX_USE_CXX11_ABI,
                                                    __cplusplus,
                                                    "3030303030303030303030303030303030303030303030303030303030303030"},
                              &factories};
const asg::PluginHeader* entry() { return reinterpret_cast<const asg::PluginHeader*>(&header); }

}  // namespace

BOOST_DLL_ALIAS(entry, asg_plugin_entry)
