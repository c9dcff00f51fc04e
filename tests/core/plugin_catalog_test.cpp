// Plugin loading and every refusal case, with real libraries built by tests/plugins/.
#include "asg/plugin_catalog.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>

#include "asg/kinds/dataset.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using asg::testing::test_plugin_dir;

namespace {

bool mapped(const fs::path& library) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::string name = fs::canonical(library).string();
  while (std::getline(maps, line))
    if (line.find(name) != std::string::npos) return true;
  return false;
}

std::string load_error(const std::vector<fs::path>& path) {
  asg::PluginCatalog catalog;
  try {
    catalog.load_path(path);
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::PluginLoad) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a plugin load error";
  return "";
}

const fs::path kProbe = test_plugin_dir("lifetime") / "asg_dataset_lifetime_probe.so";

}  // namespace

TEST(PluginCatalog, LoadsTheBuiltPluginsWithMetadata) {
  auto catalog = asg::PluginCatalog::discover();
  EXPECT_EQ(catalog.names(asg::PluginKind::Temporal), (std::vector<std::string>{"none", "sti", "temporal_attention", "temporal_conv"}));
  const auto& rec = catalog.find(asg::PluginKind::Backbone, "unet3d");
  EXPECT_EQ(rec.factory.version, "1.1.0");
  EXPECT_EQ(rec.library_sha256.size(), 64u);
  EXPECT_EQ(rec.library_path.filename(), "asg_backbone_unet3d.so");
  EXPECT_FALSE(rec.factory.params.empty());
}

TEST(PluginCatalog, SearchPathIsBuildDirThenEnvironmentThenExtra) {
  setenv("ASG_PLUGIN_PATH", "/env/one:/env/two", 1);
  auto path = asg::PluginCatalog::search_path({"/extra"});
  unsetenv("ASG_PLUGIN_PATH");
  ASSERT_EQ(path.size(), 4u);
  EXPECT_EQ(path[0], asg::testing::plugin_dir());
  EXPECT_EQ(path[1], "/env/one");
  EXPECT_EQ(path[2], "/env/two");
  EXPECT_EQ(path[3], "/extra");
}

TEST(PluginCatalog, ObjectsKeepTheirLibraryMappedUntilTheyDie) {
  std::shared_ptr<asg::Dataset> dataset;
  {
    asg::PluginCatalog catalog;
    catalog.load_path({test_plugin_dir("lifetime")});
    EXPECT_TRUE(mapped(kProbe));
    dataset = catalog.create<asg::Dataset>("lifetime_probe", asg::default_params("probe", catalog.find(asg::PluginKind::Dataset, "lifetime_probe").factory.params));
  }  // the catalog and its references to the library are gone
  ASSERT_TRUE(mapped(kProbe)) << "the library was unloaded while an object it created was alive";
  EXPECT_EQ(dataset->info().frames, 3);  // a virtual call into the library's code
  EXPECT_EQ(dataset->get(asg::Split::Train, 0).frames.size(0), 3);
  dataset.reset();
  // Built with -fno-gnu-unique, the library is really unloaded once nothing needs it.
  EXPECT_FALSE(mapped(kProbe));
}

TEST(PluginCatalog, RefusesANewerPluginApi) {
  auto lib = fs::canonical(test_plugin_dir("api_mismatch") / "asg_dataset_future_api.so");
  EXPECT_EQ(load_error({test_plugin_dir("api_mismatch")}),
            fmt::format("{}: plugin API version mismatch: the library was built for plugin API {}.0, this asg supports {}.{} "
                        "(same major, minor up to {}). Rebuild the plugin against this ASG Lab.",
                        lib.string(), asg::kPluginApiMajor + 1, asg::kPluginApiMajor, asg::kPluginApiMinor,
                        asg::kPluginApiMinor));
}

TEST(PluginCatalog, RefusesAnotherBuildFingerprintNamingBothSides) {
  auto lib = fs::canonical(test_plugin_dir("fingerprint_mismatch") / "asg_dataset_other_torch.so");
  auto host = asg::host_fingerprint();
  EXPECT_EQ(load_error({test_plugin_dir("fingerprint_mismatch")}),
            fmt::format("{}: build fingerprint mismatch: plugin built with [torch 0.4.1, {}, _GLIBCXX_USE_CXX11_ABI={}, C++ {}], "
                        "asg built with [torch {}, {}, _GLIBCXX_USE_CXX11_ABI={}, C++ {}]. Plugins exchange C++ and torch "
                        "objects with asg, so both must be built with the same Torch, compiler and ABI.",
                        lib.string(), host.compiler, host.cxx11_abi, host.cxx_standard, host.torch_version, host.compiler,
                        host.cxx11_abi, host.cxx_standard));
}

TEST(PluginCatalog, DuplicateNamesNameBothLibraries) {
  auto a = fs::canonical(kProbe);
  auto b = fs::canonical(test_plugin_dir("duplicate") / "asg_dataset_lifetime_probe_copy.so");
  EXPECT_EQ(load_error({test_plugin_dir("lifetime"), test_plugin_dir("duplicate")}),
            fmt::format("duplicate dataset plugin 'lifetime_probe': defined by {} and by {}", a.string(), b.string()));
}

TEST(PluginCatalog, LoadingTheSameLibraryTwiceIsNotADuplicate) {
  asg::PluginCatalog catalog;
  catalog.load_path({test_plugin_dir("lifetime"), kProbe});
  EXPECT_EQ(catalog.names(asg::PluginKind::Dataset).size(), 1u);
}

TEST(PluginCatalog, RefusesLibrariesThatAreNotPlugins) {
  auto lib = fs::canonical(test_plugin_dir("not_a_plugin") / "asg_not_a_plugin.so");
  EXPECT_EQ(load_error({test_plugin_dir("not_a_plugin")}),
            fmt::format("{}: not an ASG Lab plugin: it does not export 'asg_plugin_entry' (build it with asg_add_plugin() and "
                        "end its source with ASG_PLUGIN_LIBRARY(...))",
                        lib.string()));
  auto dir = asg::testing::make_temp_dir("corrupt");
  std::ofstream(dir / "asg_corrupt.so") << "not an ELF file";
  std::string err = load_error({dir});
  EXPECT_EQ(err.rfind((dir / "asg_corrupt.so").string() + ": cannot load plugin library: ", 0), 0u) << err;
  fs::remove_all(dir);
}

TEST(PluginCatalog, UnknownNameListsKnownOnesAndTheNearest) {
  auto catalog = asg::PluginCatalog::discover();
  try {
    catalog.find(asg::PluginKind::Temporal, "temporal_cnv");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(), "unknown temporal plugin 'temporal_cnv' (known temporal plugins: none, sti, temporal_attention, temporal_conv). "
                           "Did you mean "
                           "'temporal_conv'?");
  }
}

TEST(PluginCatalog, MissingSearchPathEntryIsAnError) {
  EXPECT_EQ(load_error({"/no/such/dir"}),
            "plugin path entry '/no/such/dir' does not exist (it must be a directory of asg_*.so libraries or a library file)");
}
