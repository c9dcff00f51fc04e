#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace asg::testing {

inline std::filesystem::path source_dir() { return ASG_SOURCE_DIR; }
inline std::filesystem::path build_dir() { return ASG_BUILD_DIR; }
inline std::filesystem::path plugin_dir() { return ASG_PLUGIN_DIR; }
inline std::filesystem::path test_plugin_dir(const std::string& c) { return std::filesystem::path(ASG_TEST_PLUGIN_DIR) / c; }
inline std::filesystem::path asg_binary() { return build_dir() / "asg"; }
// The reference Python environment's interpreter (.venv from requirements.lock): the same LibTorch as the build.
inline std::string python() { return ASG_PYTHON; }

// A fresh directory under the system temp dir, unique per process and call.
inline std::filesystem::path make_temp_dir(const std::string& tag) {
  static int counter = 0;
  auto p = std::filesystem::temp_directory_path() /
           ("asg-test-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

// Runs scripts/fixtures/<script> OUT <args> with the reference environment's Python and returns whether it succeeded: how
// the tests get TorchScript files with the reference interfaces and random weights.
inline bool write_fixture(const std::string& script, const std::filesystem::path& out, const std::string& args = "") {
  const std::string cmd = python() + " " + (source_dir() / "scripts/fixtures" / script).string() + " " + out.string() +
                          (args.empty() ? "" : " " + args) + " 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace asg::testing
