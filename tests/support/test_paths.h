#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace asg::testing {

inline std::filesystem::path source_dir() { return ASG_SOURCE_DIR; }
inline std::filesystem::path build_dir() { return ASG_BUILD_DIR; }
inline std::filesystem::path plugin_dir() { return ASG_PLUGIN_DIR; }
inline std::filesystem::path test_plugin_dir(const std::string& c) { return std::filesystem::path(ASG_TEST_PLUGIN_DIR) / c; }
inline std::filesystem::path asg_binary() { return build_dir() / "asg"; }

// A fresh directory under the system temp dir, unique per process and call.
inline std::filesystem::path make_temp_dir(const std::string& tag) {
  static int counter = 0;
  auto p = std::filesystem::temp_directory_path() /
           ("asg-test-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace asg::testing
