// The plugin-loading policy (asg/plugin_load_policy.h): an experiment's [runtime] plugin_path opens nothing unless
// allowed or trusted, only asg_*.so files open, and a stored config's libraries open only with a recorded sha256.
// The probe library writes $ASG_TEST_MARKER when it is opened, so "nothing was loaded" is observed, not assumed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "asg/error.h"
#include "asg/experiment.h"
#include "asg/hash.h"
#include "asg/plugin_catalog.h"
#include "asg/plugin_load_policy.h"
#include "minimal_experiment.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {


asg::PluginLoadPolicy allowed() {
  asg::PluginLoadPolicy policy;
  policy.allow_experiment_paths = true;
  return policy;
}

class PluginLoadPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = asg::testing::make_temp_dir("load_policy");
    marker_ = dir_ / "marker";
    setenv("ASG_TEST_MARKER", marker_.c_str(), 1);
    setenv("XDG_CONFIG_HOME", (dir_ / "config").c_str(), 1);
  }
  void TearDown() override {
    unsetenv("ASG_TEST_MARKER");
    unsetenv("XDG_CONFIG_HOME");
    fs::remove_all(dir_);
  }
  fs::path experiment(const fs::path& plugin_entry) {
    const fs::path file = dir_ / "e.toml";
    std::ofstream(file) << asg::testing::kMinimalExperiment << "[[metrics]]\nplugin = \"mean_pixel\"\n[runtime]\nplugin_path = [\"" << plugin_entry.string() << "\"]\n";
    return file;
  }
  // The message of the error loading `file` under `policy` throws; "" when it loads.
  std::string load_error(const fs::path& file, const asg::PluginLoadPolicy& policy) {
    asg::PluginCatalog catalog;
    catalog.set_policy(policy);
    try {
      (void)asg::load_experiment(file, {}, catalog);
    } catch (const asg::Error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_, marker_;
};

TEST_F(PluginLoadPolicyTest, AnExperimentsPluginPathIsRefusedWithoutPermissionAndNothingIsOpened) {
  const fs::path file = experiment(asg::testing::test_plugin_dir("marker"));
  const std::string error = load_error(file, asg::PluginLoadPolicy{});
  EXPECT_NE(error.find(file.string() + ":"), std::string::npos) << error;  // the key's place
  EXPECT_NE(error.find("[runtime] plugin_path names " + asg::testing::test_plugin_dir("marker").string()), std::string::npos) << error;
  EXPECT_NE(error.find("pass --allow-plugin-path"), std::string::npos) << error;
  EXPECT_NE(error.find((dir_ / "config" / "asg" / "trusted-plugin-dirs").string()), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(marker_));
  // Allowed, the same file loads, and the probe shows that it was opened: the test above can fail.
  EXPECT_EQ(load_error(file, allowed()), "");
  EXPECT_TRUE(fs::exists(marker_));
}

TEST_F(PluginLoadPolicyTest, AFolderInTheUsersTrustedListLoadsWithoutTheFlag) {
  const fs::path file = experiment(asg::testing::test_plugin_dir("marker"));
  fs::create_directories(dir_ / "config" / "asg");
  std::ofstream(dir_ / "config" / "asg" / "trusted-plugin-dirs")
      << "# folders whose plugin libraries experiment files may name\n" << asg::testing::test_plugin_dir("marker").string() << "\n";
  EXPECT_EQ(load_error(file, asg::PluginLoadPolicy{}), "");
  EXPECT_TRUE(fs::exists(marker_));
  // A relative entry in that file is refused with its line.
  std::ofstream(dir_ / "config" / "asg" / "trusted-plugin-dirs") << "\nplugins\n";
  EXPECT_NE(load_error(file, asg::PluginLoadPolicy{}).find("trusted-plugin-dirs:2: 'plugins' is not an absolute folder"), std::string::npos);
}

TEST_F(PluginLoadPolicyTest, AFileNotNamedLikeAPluginIsNeverOpenedEvenWhenAllowed) {
  const fs::path misnamed = asg::testing::test_plugin_dir("marker_misnamed") / "evil_marker.so";
  ASSERT_TRUE(fs::exists(misnamed));
  const std::string error = load_error(experiment(misnamed), allowed());
  EXPECT_NE(error.find("is not named like a plugin library (asg_<kind>_<name>.so)"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(marker_));
  // Its folder holds no asg_*.so: as a plugin path entry it contributes nothing, and opens nothing.
  const std::string folder_error = load_error(experiment(misnamed.parent_path()), allowed());
  EXPECT_NE(folder_error.find("unknown metric plugin"), std::string::npos) << folder_error;
  EXPECT_FALSE(fs::exists(marker_));
}

TEST_F(PluginLoadPolicyTest, AStoredConfigsLibraryOpensOnlyWhenItsSha256WasRecorded) {
  const fs::path library = asg::testing::test_plugin_dir("marker") / "asg_metric_mean_pixel_marker.so";
  const fs::path file = experiment(library.parent_path());
  asg::PluginLoadPolicy policy = allowed();
  policy.recorded_sha256 = std::set<std::string>{std::string(64, '0')};
  policy.recorded_by = "run 20261207-000000-abcdef";
  const std::string error = load_error(file, policy);
  EXPECT_NE(error.find(library.string() + " (sha256 " + asg::sha256_file(library).substr(0, 16) +
                       ") is not a library run 20261207-000000-abcdef recorded"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("--allow-plugin-drift"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(marker_));
  policy.recorded_sha256->insert(asg::sha256_file(library));
  EXPECT_EQ(load_error(file, policy), "");
  EXPECT_TRUE(fs::exists(marker_));
}

}  // namespace
