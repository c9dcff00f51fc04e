// Finding the install prefix from the runtime library's own path (dladdr), not from a compiled-in prefix.
#include "asg/install_layout.h"

#include <dlfcn.h>

#ifndef ASG_BUILD_PLUGIN_DIR
#define ASG_BUILD_PLUGIN_DIR ""
#endif
#ifndef ASG_SOURCE_BENCHMARK_DIR
#define ASG_SOURCE_BENCHMARK_DIR ""
#endif
#ifndef ASG_BUILD_CONFORMANCE_BINARY
#define ASG_BUILD_CONFORMANCE_BINARY ""
#endif
#ifndef ASG_SOURCE_TEMPLATE_DIR
#define ASG_SOURCE_TEMPLATE_DIR ""
#endif

namespace asg {

namespace fs = std::filesystem;

std::optional<fs::path> installed_prefix() {
  Dl_info info{};
  // Any function of this library names the file it was loaded from.
  if (dladdr(reinterpret_cast<void*>(&installed_prefix), &info) == 0 || !info.dli_fname) return std::nullopt;
  std::error_code ec;
  const fs::path library = fs::canonical(info.dli_fname, ec);
  if (ec) return std::nullopt;
  // An installed library sits in <prefix>/lib (or lib64) next to asg/plugins; a build tree has no such folder there.
  if (!fs::is_directory(library.parent_path() / "asg" / "plugins", ec)) return std::nullopt;
  return library.parent_path().parent_path();
}

fs::path bundled_plugin_dir() {
  if (const auto prefix = installed_prefix()) {
    std::error_code ec;
    for (const char* lib : {"lib", "lib64"})
      if (fs::is_directory(*prefix / lib / "asg" / "plugins", ec)) return *prefix / lib / "asg" / "plugins";
  }
  return ASG_BUILD_PLUGIN_DIR;
}

fs::path bundled_benchmark_dir() {
  if (const auto prefix = installed_prefix()) return *prefix / "share" / "asg" / "benchmarks";
  return ASG_SOURCE_BENCHMARK_DIR;
}

fs::path bundled_conformance_binary() {
  if (const auto prefix = installed_prefix()) return *prefix / "lib" / "asg" / "asg_conformance";
  return ASG_BUILD_CONFORMANCE_BINARY;
}

fs::path bundled_conformance_fixtures() {
  if (const auto prefix = installed_prefix()) return *prefix / "share" / "asg" / "conformance";
  return {};
}

fs::path bundled_plugin_templates() {
  if (const auto prefix = installed_prefix()) return *prefix / "share" / "asg" / "templates";
  return ASG_SOURCE_TEMPLATE_DIR;
}

}  // namespace asg
