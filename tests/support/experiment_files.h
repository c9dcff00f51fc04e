// The fixture of the tests that load experiment files: a temporary folder to write them into, loading one with a
// fresh plugin catalog, and the message of the configuration error loading one must give.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "asg/error.h"
#include "asg/experiment.h"
#include "asg/plugin_catalog.h"
#include "test_paths.h"

namespace asg::testing {

class ExperimentFilesTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir("experiment"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes `text` to dir_/name (folders made as needed); returns the file's path.
  std::string write(const std::string& name, const std::string& text) {
    const std::filesystem::path p = dir_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  asg::Experiment load(const std::string& file, const std::vector<std::string>& overrides = {}) {
    asg::PluginCatalog catalog;
    return asg::load_experiment(file, overrides, catalog);
  }
  // The message of the asg::Error(Config) loading `file` gives; a failure of the test if it loads.
  std::string error_of(const std::string& file, const std::vector<std::string>& overrides = {}) {
    try {
      load(file, overrides);
    } catch (const asg::Error& e) {
      EXPECT_EQ(e.kind(), asg::ErrorKind::Config) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "expected a config error for " << file;
    return "";
  }

  std::filesystem::path dir_;
};

}  // namespace asg::testing
