// Running the real `asg` binary from a test: exit code and combined output.
#pragma once

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "asg/util.h"
#include "test_paths.h"

namespace asg::testing {

struct CliResult {
  int code;
  std::string output;
};

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `asg <args>` in `cwd` (args are passed to the shell as written).
inline CliResult run_asg(const std::string& args, const std::filesystem::path& cwd) {
  std::filesystem::path out = cwd / "asg-output.txt";
  std::string cmd = fmt::format("cd {} && {} {} > {} 2>&1", shell_quote(cwd.string()), shell_quote(asg_binary().string()), args,
                                shell_quote(out.string()));
  int status = std::system(cmd.c_str());
  return CliResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, asg::read_text_file(out)};
}

}  // namespace asg::testing
