// A checkout's commit and dirtiness, read with the git command line.
#include "asg/git_state.h"

#include <array>
#include <cstdio>
#include <string>

namespace asg {

namespace {

std::string run_command(const std::string& cmd) {
  std::array<char, 256> buf{};
  std::string out;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return out;
  while (fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

GitState git_state(const std::filesystem::path& dir) {
  GitState g;
  std::string d = shell_quote(dir.empty() ? "." : dir.string());
  g.commit = run_command("git -C " + d + " rev-parse HEAD 2>/dev/null");
  if (!g.commit.empty()) g.dirty = !run_command("git -C " + d + " status --porcelain --untracked-files=no 2>/dev/null").empty();
  return g;
}

}  // namespace asg
