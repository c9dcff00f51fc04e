// PluginCatalog: finds, loads, checks and indexes plugin libraries; creates plugin objects.
//
// Search path, in order: the build's plugin directory, each entry of $ASG_PLUGIN_PATH (':'-separated),
// then [runtime].plugin_path of the experiment. An entry is a directory (every asg_*.so in it is loaded)
// or a library file. Loading a library checks its API version and build fingerprint before anything
// else; a plugin name that two libraries define for the same kind is an error naming both libraries.
//
// Objects created through the catalog own a reference to their library (see keep_library_alive), so
// the catalog may be destroyed before them.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "asg/error.h"
#include "asg/plugin.h"

namespace asg {

struct PluginLibrary;  // an open library; defined in plugin_catalog.cpp

struct PluginRecord {
  // Declared first so it is destroyed last: the factory's std::function code lives in the library.
  std::shared_ptr<const PluginLibrary> library;
  Factory factory;
  std::filesystem::path library_path;
  std::string library_sha256;
};

// The host's own fingerprint, to compare plugins against.
BuildFingerprint host_fingerprint();

class PluginCatalog {
 public:
  PluginCatalog() = default;

  // Directories and files to search: the build dir, $ASG_PLUGIN_PATH, then `extra`.
  static std::vector<std::filesystem::path> search_path(const std::vector<std::filesystem::path>& extra);
  // A catalog with every plugin on search_path(extra) loaded: what `asg` sees.
  static PluginCatalog discover(const std::vector<std::filesystem::path>& extra = {});

  // Loads every plugin library on `path`. Missing entries are errors.
  void load_path(const std::vector<std::filesystem::path>& path);
  // Loads one library file (asg::Error(PluginLoad) naming the file on any refusal).
  void load_library(const std::filesystem::path& file);

  // The plugin of that kind and name; asg::Error(Config) listing the known names and the nearest one.
  const PluginRecord& find(PluginKind kind, const std::string& name) const;
  const PluginRecord* find_any_kind(const std::string& name) const;  // for `asg plugins show`
  std::vector<std::string> names(PluginKind kind) const;
  const std::vector<PluginRecord>& plugins() const { return plugins_; }
  const std::vector<std::filesystem::path>& searched() const { return searched_; }

  template <typename Interface, typename... Args>
  std::shared_ptr<Interface> create(const std::string& name, const Params& params, Args&&... args) const;

 private:
  std::vector<PluginRecord> plugins_;
  std::vector<std::filesystem::path> searched_;
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

// Creates an object from a record's factory; the object keeps the record's library mapped.
template <typename Interface, typename... Args>
std::shared_ptr<Interface> create_from_record(const PluginRecord& record, const Params& params, Args&&... args) {
  const auto& fn = std::get<typename CreatorFor<Interface>::type>(record.factory.create);
  std::shared_ptr<Interface> object = fn(params, std::forward<Args>(args)...);
  if (!object)
    throw plugin_error(std::string(kind_name(CreatorFor<Interface>::kind)) + " '" + record.factory.name + "' from " +
                       record.library_path.string() + " returned no object");
  return keep_library_alive(std::move(object), record.library);
}

template <typename Interface, typename... Args>
std::shared_ptr<Interface> PluginCatalog::create(const std::string& name, const Params& params, Args&&... args) const {
  return create_from_record<Interface>(find(CreatorFor<Interface>::kind, name), params, std::forward<Args>(args)...);
}

}  // namespace asg
