// PluginCatalog: finds, checks and describes plugin libraries; creates plugin objects.
//
// Search path, in order: the plugins that come with ASG Lab (the install prefix's lib/asg/plugins, or the build's
// plugins/ folder; asg/install_layout.h), each entry of $ASG_PLUGIN_PATH (':'-separated), then, under the
// catalog's PluginLoadPolicy (asg/plugin_load_policy.h), [runtime] plugin_path of the experiment. An entry is a
// directory (every asg_*.so in it is loaded) or a library file named asg_*.so. Loading a library checks its API version and build fingerprint before anything
// else; a plugin name that two libraries define for the same kind is an error naming both libraries.
//
// Describing does not keep libraries loaded: the catalog copies each factory's description (kind, name,
// version, schema, requirements, library path and sha256) into a PluginRecord and closes the library
// again. Validating an experiment needs only those records. Objects are created through a LoadedPlugin,
// which opens the library again and checks that it is still the file that was described (same sha256).
//
// Objects created from a LoadedPlugin own a reference to its library (see keep_library_alive), so the
// catalog and the LoadedPlugin may be destroyed before them.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "asg/error.h"
#include "asg/plugin.h"
#include "asg/plugin_load_policy.h"

namespace asg {

struct PluginLibrary;  // an open library; defined in plugin_catalog.cpp

// The kinds experiments have slots for, in the order `asg plugins` lists them. The loader describes
// plugins of any kind (a kind is a string; see asg/plugin.h); a kind not in this list is listed after
// these, and experiments cannot use it until the core gives it a slot.
const std::vector<std::string>& known_plugin_kinds();

// One factory of a library, as described at load time. Owns no library: `factory.create` is empty.
struct PluginRecord {
  Factory factory;
  std::filesystem::path library_path;  // canonical
  std::string library_sha256;
  std::string sdk_version;  // ASG_VERSION the plugin was built against ("" for plugin API 3.0 libraries)
};

// A record whose library is open: factory.create may be called.
struct LoadedPlugin {
  std::shared_ptr<const PluginLibrary> library;  // declared first so it is destroyed last
  Factory factory;
  PluginRecord record;
};

// The host's own fingerprint, to compare plugins against.
BuildFingerprint host_fingerprint();

// Opens the record's library again, checks it is the file that was described, and finds the factory.
// asg::Error(PluginLoad) naming the library if it changed or disappeared.
std::shared_ptr<const LoadedPlugin> load_plugin(const PluginRecord& record);

class PluginCatalog {
 public:
  // Starts with PluginLoadPolicy::process_default().
  PluginCatalog() : policy_(PluginLoadPolicy::process_default()) {}

  // Directories and files to search: the build dir, $ASG_PLUGIN_PATH, then `extra`.
  static std::vector<std::filesystem::path> search_path(const std::vector<std::filesystem::path>& extra);
  // A catalog with every plugin on search_path(extra) described: what `asg` sees.
  static PluginCatalog discover(const std::vector<std::filesystem::path>& extra = {});

  // Describes every plugin library on `path` (trusted entries: the bundled folder, ASG_PLUGIN_PATH, a command-line
  // flag). Missing entries and files not named asg_*.so are errors.
  void load_path(const std::vector<std::filesystem::path>& path);
  // An experiment's [runtime] plugin_path (absolute entries; `where` is the key's file:line:col), under policy():
  // every check first (trust, names, recorded digests), then the libraries are described.
  void load_experiment_plugin_path(const std::vector<std::filesystem::path>& entries, const std::string& where);
  const PluginLoadPolicy& policy() const { return policy_; }
  void set_policy(PluginLoadPolicy policy) { policy_ = std::move(policy); }
  // Describes one library file (asg::Error(PluginLoad) naming the file on any refusal).
  void load_library(const std::filesystem::path& file);

  // The plugin of that kind and name; asg::Error(Config) listing the known names and the nearest one.
  // The record is shared, so whoever holds it (an Experiment's slots) cannot be left dangling.
  std::shared_ptr<const PluginRecord> find(const std::string& kind, const std::string& name) const;
  template <typename Interface>
  std::shared_ptr<const PluginRecord> find(const std::string& name) const {
    return find(PluginKindTraits<Interface>::name, name);
  }
  const PluginRecord* find_any_kind(const std::string& name) const;  // for `asg plugins show`
  std::vector<std::string> names(const std::string& kind) const;
  const std::vector<std::shared_ptr<const PluginRecord>>& plugins() const { return plugins_; }
  const std::vector<std::filesystem::path>& searched() const { return searched_; }

  // Loads the plugin and creates an object; `context` is the kind's context (none for kinds without one).
  template <typename Interface, typename... Context>
  std::shared_ptr<Interface> create(const std::string& name, const Params& params, const Context&... context) const;

 private:
  std::vector<std::shared_ptr<const PluginRecord>> plugins_;
  std::vector<std::filesystem::path> searched_;
  PluginLoadPolicy policy_;
};

// Returns a pointer to `object` that also keeps `library` mapped until the object is destroyed.
template <typename T>
std::shared_ptr<T> keep_library_alive(std::shared_ptr<T> object, std::shared_ptr<const PluginLibrary> library) {
  struct Holder {
    std::shared_ptr<const PluginLibrary> library;  // declared first: destroyed last
    std::shared_ptr<T> object;
  };
  T* raw = object.get();
  auto holder = std::make_shared<Holder>(Holder{std::move(library), std::move(object)});
  return std::shared_ptr<T>(holder, raw);
}

// Calls the factory with the kind's context; the object keeps the plugin's library mapped.
std::shared_ptr<void> create_erased(const LoadedPlugin& plugin, const std::string& kind, const Params& params,
                                    const void* context);

template <typename Interface>
std::shared_ptr<Interface> create_plugin(const LoadedPlugin& plugin, const Params& params,
                                         const typename PluginKindTraits<Interface>::Context& context = {}) {
  return std::static_pointer_cast<Interface>(create_erased(plugin, PluginKindTraits<Interface>::name, params, &context));
}

template <typename Interface, typename... Context>
std::shared_ptr<Interface> PluginCatalog::create(const std::string& name, const Params& params,
                                                 const Context&... context) const {
  return create_plugin<Interface>(*load_plugin(*find<Interface>(name)), params, context...);
}

}  // namespace asg
