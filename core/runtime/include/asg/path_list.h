// A colon-separated list of folders from an environment variable (ASG_PLUGIN_PATH, ASG_BENCHMARK_PATH), as PATH
// is written: empty entries are skipped. Host-only (plugins never include it).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace asg {

inline std::vector<std::filesystem::path> path_list_from_env(const char* variable) {
  std::vector<std::filesystem::path> out;
  const char* value = std::getenv(variable);
  if (!value) return out;
  const std::string s(value);
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace asg
