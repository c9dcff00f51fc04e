// Which plugin libraries ASG Lab opens. Opening a library runs its code (its static constructors), so a library
// is opened only from places the user chose, never because a file someone else wrote names it.
//
//   always        the plugins that come with ASG Lab (install_layout.h), $ASG_PLUGIN_PATH, `asg plugins
//                 --plugin-path`; only files named asg_*.so
//   an experiment's [runtime] plugin_path
//                 only with `asg --allow-plugin-path`, or when the entry lies in a folder the user trusts
//                 (one absolute folder per line in trusted_plugin_dirs_file())
//   a config a run stored (asg reproduce, eval, resume; also after `asg runs import`)
//                 as above, and then only libraries whose sha256 the run recorded (`recorded_sha256`),
//                 checked before anything is opened
//
// Every refusal is asg::Error(Config) naming the key's place, the file and what would let it load; nothing is
// opened before every check passed. docs/plugins.md says the same for users. Host-only.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace asg {

struct PluginLoadPolicy {
  bool allow_experiment_paths = false;
  // Set for a config a run stored: the sha256 of every library the run recorded.
  std::optional<std::set<std::string>> recorded_sha256;
  // Says which run recorded them, for the refusal's message.
  std::string recorded_by;

  // What every new PluginCatalog starts with. The CLI sets allow_experiment_paths from --allow-plugin-path once,
  // before it loads anything.
  static PluginLoadPolicy& process_default();
};

// $XDG_CONFIG_HOME/asg/trusted-plugin-dirs (else ~/.config/asg/...): one absolute folder per line, '#' comments.
std::filesystem::path trusted_plugin_dirs_file();
// The folders it lists (canonical; a missing file lists none). asg::Error(Config) naming file:line for an entry
// that is not an absolute path.
std::vector<std::filesystem::path> trusted_plugin_dirs();

// The plugin libraries a plugin path entry stands for: the asg_*.so files of a folder (sorted), or the file itself.
// asg::Error(PluginLoad) for an entry that does not exist or a file not named asg_*.so.
std::vector<std::filesystem::path> plugin_libraries_of(const std::filesystem::path& entry);

// Checks that an experiment's [runtime] plugin_path `entries` (absolute) may be opened under `policy`; `where` is
// the key's file:line:col. Throws before anything is opened; returns the library files to open.
std::vector<std::filesystem::path> check_experiment_plugin_path(const std::vector<std::filesystem::path>& entries,
                                                                const PluginLoadPolicy& policy, const std::string& where);

}  // namespace asg
