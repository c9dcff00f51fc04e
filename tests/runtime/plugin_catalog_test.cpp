// Plugin loading and every refusal case, with real libraries built by tests/plugins/.
#include "asg/plugin_catalog.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>

#include "asg/kinds/dataset.h"
#include "new_kind.h"
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
  EXPECT_EQ(catalog.names("temporal"), (std::vector<std::string>{"none", "sti", "swap_attention", "temporal_attention", "temporal_conv"}));
  EXPECT_EQ(catalog.names("autoencoder"), (std::vector<std::string>{"autoencoder_kl", "frame_vae", "torchscript_autoencoder"}));
  EXPECT_EQ(catalog.names("text_encoder"),
            (std::vector<std::string>{"chinese_clip_text", "clip_text", "clip_torchscript", "rdtf_text", "t5_text", "word_embedding"}));
  const auto& rec = catalog.find("backbone", "unet3d");
  EXPECT_EQ(rec->factory.version, "1.2.0");
  EXPECT_EQ(rec->library_sha256.size(), 64u);
  EXPECT_EQ(rec->library_path.filename(), "asg_backbone_unet3d.so");
  EXPECT_FALSE(rec->factory.params.empty());
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
    // Describing a library (what validating an experiment needs) does not keep it loaded.
    EXPECT_FALSE(mapped(kProbe));
    auto record = catalog.find("dataset", "lifetime_probe");
    EXPECT_EQ(record->factory.version, "0.1.0");
    EXPECT_FALSE(record->factory.create) << "a description must not hold code of a closed library";
    dataset = catalog.create<asg::Dataset>("lifetime_probe", asg::default_params("probe", record->factory.params));
    EXPECT_TRUE(mapped(kProbe));
  }  // the catalog and its references to the library are gone
  ASSERT_TRUE(mapped(kProbe)) << "the library was unloaded while an object it created was alive";
  EXPECT_EQ(dataset->info().frames, 3);  // a virtual call into the library's code
  EXPECT_EQ(dataset->get(asg::Split::Train, 0).frames.size(0), 3);
  dataset.reset();
  // Built with -fno-gnu-unique, the library is really unloaded once nothing needs it.
  EXPECT_FALSE(mapped(kProbe));
}

TEST(PluginCatalog, AnErrorThrownByAPluginOutlivesItsLibrary) {
  // The exception unwinds past the last object of the library, which unloads it; the handler then uses
  // the exception (what(), its destructor): asg::Error's vtable and typeinfo must live in the SDK, not in
  // the plugin.
  try {
    auto dataset = [] {
      asg::PluginCatalog catalog;
      catalog.load_path({test_plugin_dir("lifetime")});
      auto record = catalog.find("dataset", "lifetime_probe");
      return catalog.create<asg::Dataset>("lifetime_probe", asg::default_params("probe", record->factory.params));
    }();
    dataset->get(asg::Split::Train, 5);
    FAIL() << "expected the probe's error";
  } catch (const asg::Error& e) {
    EXPECT_FALSE(mapped(kProbe)) << "the library should be unloaded by now";
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_STREQ(e.what(), "lifetime_probe: index 5 (valid: 0)");
  }
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

TEST(PluginCatalog, RefusesOtherSdkHeadersUnderTheSameApiVersionNamingBothHashes) {
  auto lib = fs::canonical(test_plugin_dir("sdk_hash_mismatch") / "asg_dataset_other_sdk_headers.so");
  EXPECT_EQ(load_error({test_plugin_dir("sdk_hash_mismatch")}),
            fmt::format("{}: SDK header mismatch: the plugin was compiled against SDK headers with sha256 "
                        "0000000000000000000000000000000000000000000000000000000000000bad, this asg against {}, both "
                        "claiming plugin API {}.{}. An SDK header changed without a plugin API version bump; rebuild the "
                        "plugin against this ASG Lab's headers.",
                        lib.string(), ASG_SDK_HEADERS_SHA256, asg::kPluginApiMajor, asg::kPluginApiMinor));
  EXPECT_EQ(std::string(ASG_SDK_HEADERS_SHA256).size(), 64u);
}

TEST(PluginCatalog, ExceptionWhileListingFactoriesIsALoadErrorNamingTheLibrary) {
  auto lib = fs::canonical(test_plugin_dir("throwing_factories") / "asg_dataset_throwing_factories.so");
  EXPECT_EQ(load_error({test_plugin_dir("throwing_factories")}),
            lib.string() + ": the library threw while listing its plugins: could not read my model table");
}

TEST(PluginCatalog, APluginOfAnOlderMajorIsRefusedNamingBothVersions) {
  auto lib = fs::canonical(test_plugin_dir("older_minor") / "asg_dataset_older_minor.so");
  EXPECT_EQ(load_error({test_plugin_dir("older_minor")}),
            fmt::format("{}: plugin API version mismatch: the library was built for plugin API 3.0, this asg supports {}.{} "
                        "(same major, minor up to {}). Rebuild the plugin against this ASG Lab.",
                        lib.string(), asg::kPluginApiMajor, asg::kPluginApiMinor, asg::kPluginApiMinor));
}

TEST(PluginCatalog, CurrentPluginsRecordTheSdkVersionTheyWereBuiltAgainst) {
  auto catalog = asg::PluginCatalog::discover();
  EXPECT_EQ(catalog.find("backbone", "unet3d")->sdk_version, ASG_VERSION);
}

TEST(PluginCatalog, ANewKindNeedsNoChangeToTheAbi) {
  asg::PluginCatalog catalog;
  catalog.load_path({test_plugin_dir("new_kind")});
  EXPECT_EQ(catalog.names("widget"), std::vector<std::string>{"doubler"});
  auto widget = catalog.create<asg::testing::Widget>("doubler", asg::default_params("doubler", catalog.find("widget", "doubler")->factory.params),
                                                     asg::testing::WidgetContext{10});
  EXPECT_EQ(widget->apply(5), 2 * 5 + 1 + 10);
  // A kind is found by its name; the same plugin name under another kind is another plugin.
  EXPECT_THROW(catalog.find("dataset", "doubler"), asg::Error);
}

TEST(PluginCatalog, PluginsExportOnlyTheirEntryPoint) {
  for (const auto& entry : fs::directory_iterator(asg::testing::plugin_dir())) {
    if (entry.path().extension() != ".so") continue;
    // Defined dynamic symbols, without the version node the linker script adds.
    std::string cmd = "nm -D --defined-only " + entry.path().string() + " | awk '$2 != \"A\" {print $3}'";
    FILE* pipe = popen(cmd.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::vector<std::string> symbols;
    char line[4096];
    while (fgets(line, sizeof(line), pipe)) {
      std::string s(line);
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
      if (!s.empty()) symbols.push_back(s);
    }
    ASSERT_EQ(pclose(pipe), 0) << cmd;
    EXPECT_EQ(symbols, std::vector<std::string>{"asg_plugin_entry"}) << entry.path();
  }
}

TEST(PluginCatalog, ALibraryChangedAfterItWasDescribedIsRefused) {
  auto dir = asg::testing::make_temp_dir("changed");
  fs::copy_file(kProbe, dir / "asg_dataset_lifetime_probe.so");
  asg::PluginCatalog catalog;
  catalog.load_path({dir});
  auto record = catalog.find("dataset", "lifetime_probe");
  std::ofstream(dir / "asg_dataset_lifetime_probe.so", std::ios::app) << "appended";
  try {
    asg::load_plugin(*record);
    ADD_FAILURE() << "expected a refusal";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::PluginLoad);
    EXPECT_EQ(std::string(e.what()).rfind((fs::canonical(dir) / "asg_dataset_lifetime_probe.so").string() +
                                              ": the library of dataset plugin 'lifetime_probe' changed since it was described",
                                          0),
              0u)
        << e.what();
  }
  fs::remove_all(dir);
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
  EXPECT_EQ(catalog.names("dataset").size(), 1u);
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
    catalog.find("temporal", "temporal_cnv");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(), "unknown temporal plugin 'temporal_cnv' (known temporal plugins: none, sti, swap_attention, temporal_attention, temporal_conv). "
                           "Did you mean "
                           "'temporal_conv'?");
  }
}

TEST(PluginCatalog, MissingSearchPathEntryIsAnError) {
  EXPECT_EQ(load_error({"/no/such/dir"}),
            "plugin path entry '/no/such/dir' does not exist (it must be a directory of asg_*.so libraries or a library file)");
}
