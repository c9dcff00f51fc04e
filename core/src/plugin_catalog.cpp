#include "asg/plugin_catalog.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <cstring>

#include "asg/util.h"

#ifndef ASG_BUILD_PLUGIN_DIR
#define ASG_BUILD_PLUGIN_DIR ""
#endif

namespace asg {

namespace fs = std::filesystem;

struct PluginLibrary {
  boost::dll::shared_library handle;
};

const char* kind_name(PluginKind kind) {
  switch (kind) {
    case PluginKind::Dataset: return "dataset";
    case PluginKind::TextEncoder: return "text_encoder";
    case PluginKind::Backbone: return "backbone";
    case PluginKind::Temporal: return "temporal";
    case PluginKind::Sampler: return "sampler";
    case PluginKind::Metric: return "metric";
  }
  return "?";
}

BuildFingerprint host_fingerprint() { return ASG_BUILD_FINGERPRINT; }

namespace {

std::string describe(const BuildFingerprint& f) {
  return fmt::format("torch {}, {}, _GLIBCXX_USE_CXX11_ABI={}, C++ {}", f.torch_version, f.compiler, f.cxx11_abi,
                     f.cxx_standard);
}

bool is_plugin_file(const fs::path& p) {
  auto name = p.filename().string();
  return name.rfind("asg_", 0) == 0 && p.extension() == ".so";
}

}  // namespace

std::vector<fs::path> PluginCatalog::search_path(const std::vector<fs::path>& extra) {
  std::vector<fs::path> out;
  if (std::strlen(ASG_BUILD_PLUGIN_DIR) > 0) out.emplace_back(ASG_BUILD_PLUGIN_DIR);
  if (const char* env = std::getenv("ASG_PLUGIN_PATH")) {
    std::string s(env);
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) out.emplace_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
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
    std::error_code ec;
    if (fs::is_directory(entry, ec)) {
      std::vector<fs::path> files;
      for (const auto& f : fs::directory_iterator(entry)) {
        if (f.is_regular_file() && is_plugin_file(f.path())) files.push_back(f.path());
      }
      std::sort(files.begin(), files.end());  // deterministic order, hence deterministic errors
      for (const auto& f : files) load_library(f);
      searched_.push_back(entry);
    } else if (fs::is_regular_file(entry, ec)) {
      load_library(entry);
      searched_.push_back(entry);
    } else {
      throw plugin_error(fmt::format("plugin path entry '{}' does not exist (it must be a directory of asg_*.so "
                                     "libraries or a library file)",
                                     entry.string()));
    }
  }
}

void PluginCatalog::load_library(const fs::path& file) {
  fs::path canonical = fs::weakly_canonical(file);
  for (const auto& p : plugins_)
    if (p.library_path == canonical) return;  // already loaded through another path entry

  auto library = std::make_shared<PluginLibrary>();
  try {
    library->handle.load(canonical, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw plugin_error(fmt::format("{}: cannot load plugin library: {}", canonical.string(), e.what()));
  }
  if (!library->handle.has(kPluginEntrySymbol)) {
    throw plugin_error(fmt::format("{}: not an ASG Lab plugin: it does not export '{}' (build it with "
                                   "asg_add_plugin() and end its source with ASG_PLUGIN_LIBRARY(...))",
                                   canonical.string(), kPluginEntrySymbol));
  }
  const PluginHeader* header = library->handle.get_alias<PluginEntry>(kPluginEntrySymbol)();
  if (!header) throw plugin_error(fmt::format("{}: plugin entry returned no header", canonical.string()));

  if (header->api_major != kPluginApiMajor || header->api_minor > kPluginApiMinor) {
    throw plugin_error(fmt::format(
        "{}: plugin API version mismatch: the library was built for plugin API {}.{}, this asg supports {}.{} "
        "(same major, minor up to {}). Rebuild the plugin against this ASG Lab.",
        canonical.string(), header->api_major, header->api_minor, kPluginApiMajor, kPluginApiMinor, kPluginApiMinor));
  }
  const BuildFingerprint host = host_fingerprint();
  const BuildFingerprint& lib = header->fingerprint;
  if (std::strcmp(host.torch_version, lib.torch_version) != 0 || std::strcmp(host.compiler, lib.compiler) != 0 ||
      host.cxx11_abi != lib.cxx11_abi || host.cxx_standard != lib.cxx_standard) {
    throw plugin_error(fmt::format(
        "{}: build fingerprint mismatch: plugin built with [{}], asg built with [{}]. Plugins exchange C++ and "
        "torch objects with asg, so both must be built with the same Torch, compiler and ABI.",
        canonical.string(), describe(lib), describe(host)));
  }

  std::vector<Factory> factories = header->factories();
  std::string sha = sha256_file(canonical);
  for (size_t i = 0; i < factories.size(); ++i) {
    const Factory& factory = factories[i];
    for (const auto& existing : plugins_) {
      if (existing.factory.kind() == factory.kind() && existing.factory.name == factory.name) {
        throw plugin_error(fmt::format("duplicate {} plugin '{}': defined by {} and by {}", kind_name(factory.kind()),
                                       factory.name, existing.library_path.string(), canonical.string()));
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (factories[j].kind() == factory.kind() && factories[j].name == factory.name)
        throw plugin_error(fmt::format("duplicate {} plugin '{}': defined twice by {}", kind_name(factory.kind()),
                                       factory.name, canonical.string()));
    }
  }
  for (auto& factory : factories) plugins_.push_back(PluginRecord{library, std::move(factory), canonical, sha});
}

std::vector<std::string> PluginCatalog::names(PluginKind kind) const {
  std::vector<std::string> out;
  for (const auto& p : plugins_)
    if (p.factory.kind() == kind) out.push_back(p.factory.name);
  std::sort(out.begin(), out.end());
  return out;
}

const PluginRecord& PluginCatalog::find(PluginKind kind, const std::string& name) const {
  for (const auto& p : plugins_)
    if (p.factory.kind() == kind && p.factory.name == name) return p;
  auto known = names(kind);
  throw config_error(fmt::format("unknown {} plugin '{}' (known {} plugins: {}).{}", kind_name(kind), name,
                                 kind_name(kind), known.empty() ? "none" : join(known, ", "),
                                 did_you_mean(name, known)));
}

const PluginRecord* PluginCatalog::find_any_kind(const std::string& name) const {
  for (const auto& p : plugins_)
    if (p.factory.name == name) return &p;
  return nullptr;
}

}  // namespace asg
