// Running the real `asg` binary from a test: exit code and combined output.
#pragma once

#include <fmt/format.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "asg/files.h"
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

// A reduced quickstart for end-to-end tests: the real experiment file with a tiny model (channels [8, 16], text
// dim 16), one thread, on the ad-hoc benchmark "e2e-bench". `budget` holds the test's own [sampler], [train] and
// [eval] tables, each given once.
inline std::string reduced_quickstart(const std::string& name, const std::string& budget) {
  return fmt::format("base = [\"{}\"]\nname = \"{}\"\n[backbone]\nchannels = [8, 16]\n[text_encoder]\ndim = 16\n[runtime]\nthreads = 1\n"
                     "[benchmark]\nname = \"e2e-bench\"\n{}",
                     (source_dir() / "experiments" / "quickstart.toml").string(), name, budget);
}

// Starts `args` (args[0] the program) in `cwd` with stdout and stderr into `log`; returns the pid.
inline pid_t spawn(const std::vector<std::string>& args, const std::filesystem::path& cwd, const std::filesystem::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(99);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(args[0].c_str(), argv.data());
    _exit(98);
  }
  return pid;
}

// SIGTERM, then SIGKILL after 10 s; reaps the process.
inline void stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    usleep(100000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

}  // namespace asg::testing
