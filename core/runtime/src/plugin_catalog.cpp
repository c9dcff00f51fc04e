#include "asg/plugin_catalog.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "asg/install_layout.h"
#include "asg/path_list.h"
#include "asg/names.h"
#include "asg/hash.h"

namespace asg {

namespace fs = std::filesystem;

struct PluginLibrary {
  boost::dll::shared_library handle;
};

const std::vector<std::string>& known_plugin_kinds() {
  static const std::vector<std::string> kinds = {"dataset", "text_encoder", "backbone", "temporal", "sampler", "autoencoder", "image_encoder", "metric"};
  return kinds;
}

BuildFingerprint host_fingerprint() { return ASG_BUILD_FINGERPRINT; }

namespace {

std::string describe(const BuildFingerprint& f) {
  return fmt::format("torch {}, {}, _GLIBCXX_USE_CXX11_ABI={}, C++ {}", f.torch_version, f.compiler, f.cxx11_abi,
                     f.cxx_standard);
}

// What an opened and checked library offers.
struct OpenedLibrary {
  std::shared_ptr<PluginLibrary> library;
  std::vector<Factory> factories;  // their create functions live in `library`: destroy them first
  std::string sdk_version;
};

// Opens `canonical`, checks its header and lists its factories. Every refusal names the file.
OpenedLibrary open_library(const fs::path& canonical) {
  OpenedLibrary opened;
  opened.library = std::make_shared<PluginLibrary>();
  try {
    opened.library->handle.load(canonical, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw plugin_error(fmt::format("{}: cannot load plugin library: {}", canonical.string(), e.what()));
  }
  if (!opened.library->handle.has(kPluginEntrySymbol)) {
    throw plugin_error(fmt::format("{}: not an ASG Lab plugin: it does not export '{}' (build it with "
                                   "asg_add_plugin() and end its source with ASG_PLUGIN_LIBRARY(...))",
                                   canonical.string(), kPluginEntrySymbol));
  }
  const PluginHeader* header = opened.library->handle.get_alias<PluginEntry>(kPluginEntrySymbol)();
  if (!header) throw plugin_error(fmt::format("{}: plugin entry returned no header", canonical.string()));

  // api_major, api_minor and struct_size are the first three fields of every version of the header.
  if (header->api_major != kPluginApiMajor || header->api_minor > kPluginApiMinor) {
    throw plugin_error(fmt::format(
        "{}: plugin API version mismatch: the library was built for plugin API {}.{}, this asg supports {}.{} "
        "(same major, minor up to {}). Rebuild the plugin against this ASG Lab.",
        canonical.string(), header->api_major, header->api_minor, kPluginApiMajor, kPluginApiMinor, kPluginApiMinor));
  }
  // The header as of 3.0 ends with `factories`; a shorter one is not an ASG Lab 3.x header.
  constexpr size_t kV3_0Size = offsetof(PluginHeader, factories) + sizeof(PluginHeader::factories);
  if (header->struct_size < kV3_0Size) {
    throw plugin_error(fmt::format("{}: plugin header is {} bytes, smaller than the {} bytes of plugin API {}.0; the "
                                   "library is corrupt or was not built with asg_add_plugin()",
                                   canonical.string(), header->struct_size, kV3_0Size, kPluginApiMajor));
  }
  auto has_field = [&](size_t offset, size_t size) { return header->struct_size >= offset + size; };

  const BuildFingerprint host = host_fingerprint();
  const BuildFingerprint& lib = header->fingerprint;
  if (std::strcmp(host.torch_version, lib.torch_version) != 0 || std::strcmp(host.compiler, lib.compiler) != 0 ||
      host.cxx11_abi != lib.cxx11_abi || host.cxx_standard != lib.cxx_standard) {
    throw plugin_error(fmt::format(
        "{}: build fingerprint mismatch: plugin built with [{}], asg built with [{}]. Plugins exchange C++ and "
        "torch objects with asg, so both must be built with the same Torch, compiler and ABI.",
        canonical.string(), describe(lib), describe(host)));
  }
  if (header->api_minor == kPluginApiMinor && std::strcmp(host.sdk_headers_sha256, lib.sdk_headers_sha256) != 0) {
    throw plugin_error(fmt::format(
        "{}: SDK header mismatch: the plugin was compiled against SDK headers with sha256 {}, this asg against {}, both "
        "claiming plugin API {}.{}. An SDK header changed without a plugin API version bump; rebuild the plugin "
        "against this ASG Lab's headers.",
        canonical.string(), lib.sdk_headers_sha256, host.sdk_headers_sha256, kPluginApiMajor, kPluginApiMinor));
  }
  if (has_field(offsetof(PluginHeader, sdk_version), sizeof(PluginHeader::sdk_version)) && header->sdk_version)
    opened.sdk_version = header->sdk_version;

  try {
    opened.factories = header->factories();
  } catch (const std::exception& e) {
    throw plugin_error(fmt::format("{}: the library threw while listing its plugins: {}", canonical.string(), e.what()));
  } catch (...) {
    throw plugin_error(fmt::format("{}: the library threw a non-standard exception while listing its plugins",
                                   canonical.string()));
  }
  for (const Factory& f : opened.factories) {
    if (!f.create)
      throw plugin_error(fmt::format("{}: {} plugin '{}' has no create function", canonical.string(), f.kind, f.name));
  }
  return opened;
}

}  // namespace

std::shared_ptr<const LoadedPlugin> load_plugin(const PluginRecord& record) {
  if (!fs::exists(record.library_path))
    throw plugin_error(fmt::format("{}: the library of {} plugin '{}' is gone (it was there when the experiment was "
                                   "validated)",
                                   record.library_path.string(), record.factory.kind, record.factory.name));
  const std::string sha = sha256_file(record.library_path);
  if (sha != record.library_sha256)
    throw plugin_error(fmt::format("{}: the library of {} plugin '{}' changed since it was described (sha256 {} then, "
                                   "{} now); validate the experiment again",
                                   record.library_path.string(), record.factory.kind, record.factory.name,
                                   record.library_sha256.substr(0, 16), sha.substr(0, 16)));
  OpenedLibrary opened = open_library(record.library_path);
  for (auto& f : opened.factories) {
    if (f.kind != record.factory.kind || f.name != record.factory.name) continue;
    auto loaded = std::make_shared<LoadedPlugin>();
    loaded->library = opened.library;
    loaded->factory = std::move(f);
    loaded->record = record;
    return loaded;
  }
  throw plugin_error(fmt::format("{}: no longer defines {} plugin '{}'", record.library_path.string(), record.factory.kind,
                                 record.factory.name));
}

std::shared_ptr<void> create_erased(const LoadedPlugin& plugin, const std::string& kind, const Params& params,
                                    const void* context) {
  if (plugin.factory.kind != kind)
    throw internal_error(fmt::format("{} plugin '{}' created as a {}", plugin.factory.kind, plugin.factory.name, kind));
  std::shared_ptr<void> object = plugin.factory.create(params, context);
  if (!object)
    throw plugin_error(fmt::format("{} '{}' from {} returned no object", kind, plugin.factory.name,
                                   plugin.record.library_path.string()));
  return keep_library_alive(std::move(object), plugin.library);
}

std::vector<fs::path> PluginCatalog::search_path(const std::vector<fs::path>& extra) {
  std::vector<fs::path> out;
  if (const fs::path bundled = bundled_plugin_dir(); !bundled.empty()) out.push_back(bundled);
  for (auto& entry : path_list_from_env("ASG_PLUGIN_PATH")) out.push_back(std::move(entry));
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

PluginCatalog PluginCatalog::discover(const std::vector<fs::path>& extra) {
  PluginCatalog catalog;
  catalog.load_path(search_path(extra));
  return catalog;
}

void PluginCatalog::load_path(const std::vector<fs::path>& path) {
  for (const auto& entry : path) {
    for (const auto& library : plugin_libraries_of(entry)) load_library(library);
    searched_.push_back(entry);
  }
}

void PluginCatalog::load_experiment_plugin_path(const std::vector<fs::path>& entries, const std::string& where) {
  const std::vector<fs::path> libraries = check_experiment_plugin_path(entries, policy_, where);
  for (const auto& library : libraries) load_library(library);
  searched_.insert(searched_.end(), entries.begin(), entries.end());
}

void PluginCatalog::load_library(const fs::path& file) {
  fs::path canonical = fs::weakly_canonical(file);
  for (const auto& p : plugins_)
    if (p->library_path == canonical) return;  // already described through another path entry

  std::vector<std::shared_ptr<const PluginRecord>> described;
  {
    OpenedLibrary opened = open_library(canonical);
    const std::string sha = sha256_file(canonical);
    for (size_t i = 0; i < opened.factories.size(); ++i) {
      const Factory& factory = opened.factories[i];
      for (const auto& existing : plugins_) {
        if (existing->factory.kind == factory.kind && existing->factory.name == factory.name) {
          throw plugin_error(fmt::format("duplicate {} plugin '{}': defined by {} and by {}", factory.kind, factory.name,
                                         existing->library_path.string(), canonical.string()));
        }
      }
      for (size_t j = 0; j < i; ++j) {
        if (opened.factories[j].kind == factory.kind && opened.factories[j].name == factory.name)
          throw plugin_error(fmt::format("duplicate {} plugin '{}': defined twice by {}", factory.kind, factory.name,
                                         canonical.string()));
      }
      Factory description = factory;
      description.create = nullptr;  // its code lives in the library, which is closed below
      described.push_back(std::make_shared<const PluginRecord>(
          PluginRecord{std::move(description), canonical, sha, opened.sdk_version}));
    }
    opened.factories.clear();  // before the library closes with `opened`
  }
  plugins_.insert(plugins_.end(), described.begin(), described.end());
}

std::vector<std::string> PluginCatalog::names(const std::string& kind) const {
  std::vector<std::string> out;
  for (const auto& p : plugins_)
    if (p->factory.kind == kind) out.push_back(p->factory.name);
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<const PluginRecord> PluginCatalog::find(const std::string& kind, const std::string& name) const {
  for (const auto& p : plugins_)
    if (p->factory.kind == kind && p->factory.name == name) return p;
  auto known = names(kind);
  throw config_error(fmt::format("unknown {} plugin '{}' (known {} plugins: {}).{}", kind, name,
                                 kind, known.empty() ? "none" : join(known, ", "),
                                 did_you_mean(name, known)));
}

const PluginRecord* PluginCatalog::find_any_kind(const std::string& name) const {
  for (const auto& p : plugins_)
    if (p->factory.name == name) return p.get();
  return nullptr;
}

}  // namespace asg
