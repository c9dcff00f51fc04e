// The plugin-loading policy: trusted folders, library names, and recorded digests checked before opening.
#include "asg/plugin_load_policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "asg/error.h"
#include "asg/hash.h"

namespace asg {

namespace fs = std::filesystem;

PluginLoadPolicy& PluginLoadPolicy::process_default() {
  static PluginLoadPolicy policy;
  return policy;
}

fs::path trusted_plugin_dirs_file() {
  if (const char* config = std::getenv("XDG_CONFIG_HOME"); config && *config) return fs::path(config) / "asg" / "trusted-plugin-dirs";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/") / ".config" / "asg" / "trusted-plugin-dirs";
}

std::vector<fs::path> trusted_plugin_dirs() {
  const fs::path file = trusted_plugin_dirs_file();
  std::ifstream in(file);
  std::vector<fs::path> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty()) continue;
    if (!fs::path(line).is_absolute())
      throw config_error(fmt::format("{}:{}: '{}' is not an absolute folder (the file lists one absolute folder per line)",
                                     file.string(), number, line));
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(line, ec);
    out.push_back(ec ? fs::path(line) : canonical);
  }
  return out;
}

std::vector<fs::path> plugin_libraries_of(const fs::path& entry) {
  auto is_plugin_name = [](const fs::path& p) {
    const std::string name = p.filename().string();
    return name.rfind("asg_", 0) == 0 && p.extension() == ".so";
  };
  std::error_code ec;
  std::vector<fs::path> out;
  if (fs::is_directory(entry, ec)) {
    for (const auto& f : fs::directory_iterator(entry))
      if (f.is_regular_file() && is_plugin_name(f.path())) out.push_back(f.path());
    std::sort(out.begin(), out.end());  // deterministic order, hence deterministic errors
    return out;
  }
  if (!fs::is_regular_file(entry, ec))
    throw plugin_error(fmt::format("plugin path entry '{}' does not exist (it must be a directory of asg_*.so libraries or a "
                                   "library file)",
                                   entry.string()));
  if (!is_plugin_name(entry))
    throw plugin_error(fmt::format("plugin path entry '{}' is not named like a plugin library (asg_<kind>_<name>.so); ASG Lab "
                                   "opens no other file",
                                   entry.string()));
  return {entry};
}

namespace {

bool inside(const fs::path& entry, const fs::path& folder) {
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(entry, ec);
  const fs::path relative = (ec ? entry : canonical).lexically_relative(folder);
  return !relative.empty() && *relative.begin() != "..";
}

}  // namespace

std::vector<fs::path> check_experiment_plugin_path(const std::vector<fs::path>& entries, const PluginLoadPolicy& policy,
                                                   const std::string& where) {
  if (entries.empty()) return {};
  if (!policy.allow_experiment_paths) {
    const auto trusted = trusted_plugin_dirs();
    for (const auto& entry : entries) {
      if (std::any_of(trusted.begin(), trusted.end(), [&](const fs::path& dir) { return inside(entry, dir); })) continue;
      throw config_error(fmt::format(
          "{}: [runtime] plugin_path names {}, and ASG Lab opens a library an experiment file names only when asked to (opening "
          "it runs its code): pass --allow-plugin-path to asg, list the folder in {}, or put the library on ASG_PLUGIN_PATH. "
          "Nothing was loaded.",
          where, entry.string(), trusted_plugin_dirs_file().string()));
    }
  }
  std::vector<fs::path> libraries;
  for (const auto& entry : entries)
    for (auto& library : plugin_libraries_of(entry)) libraries.push_back(std::move(library));
  if (policy.recorded_sha256) {
    for (const auto& library : libraries) {
      const std::string sha = sha256_file(library);
      if (policy.recorded_sha256->count(sha)) continue;
      throw config_error(fmt::format("{}: {} (sha256 {}) is not a library {} recorded, so ASG Lab does not open it. Put the "
                                     "recorded library there, or pass --allow-plugin-drift to rerun with this one. Nothing was "
                                     "loaded.",
                                     where, library.string(), sha.substr(0, 16), policy.recorded_by.empty() ? "the run" : policy.recorded_by));
    }
  }
  return libraries;
}

}  // namespace asg
