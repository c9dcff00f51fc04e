// asg plugins (list, show, test) and asg new plugin: what a plugin author uses, installed or in the tree.
#include "plugin_commands.h"

#include <fmt/format.h>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <vector>

#include "asg/error.h"
#include "asg/install_layout.h"
#include "asg/path_list.h"
#include "asg/plugin_catalog.h"
#include "asg/names.h"
#include "asg/files.h"
#include "asg/version.h"

extern char** environ;

namespace asg::cli {

namespace fs = std::filesystem;

namespace {

int cmd_plugins(const std::string& show, const std::vector<std::string>& extra_path) {
  auto catalog = PluginCatalog::discover(std::vector<fs::path>(extra_path.begin(), extra_path.end()));
  if (!show.empty()) {
    const asg::PluginRecord* p = catalog.find_any_kind(show);
    if (!p) {
      std::vector<std::string> all;
      for (const auto& r : catalog.plugins()) all.push_back(r->factory.name);
      throw asg::config_error(fmt::format("no plugin named '{}' (known: {}).{}", show, asg::join(all, ", "),
                                          asg::did_you_mean(show, all)));
    }
    for (const auto& plugin : catalog.plugins()) {
      const asg::PluginRecord& r = *plugin;
      if (r.factory.name != show) continue;
      fmt::print("{} {} {}\n  {}\n  library: {}\n  sha256:  {}\n  built against: ASG Lab {}\n", r.factory.kind,
                 r.factory.name, r.factory.version, r.factory.summary, r.library_path.string(), r.library_sha256,
                 r.sdk_version.empty() ? "(not recorded: plugin API 3.0)" : r.sdk_version);
      const asg::Requirements& needs = r.factory.requirements;
      if (!needs.label_keys.empty()) fmt::print("  requires dataset label keys: {}\n", asg::join(needs.label_keys, ", "));
      if (!needs.vocabulary.name.empty()) fmt::print("  requires dataset vocabulary: {}\n", needs.vocabulary.text());
      if (needs.min_frames > 0) fmt::print("  requires clips of at least {} frames\n", needs.min_frames);
      fmt::print("\n");
      if (r.factory.params.empty()) {
        fmt::print("  (no parameters)\n\n");
        continue;
      }
      fmt::print("| key | type | default | valid | description |\n|---|---|---|---|---|\n");
      for (const auto& s : r.factory.params) {
        fmt::print("| {} | {} | {} | {} | {} |\n", s.key, asg::param_type_name(s.type),
                   s.required ? "(required)" : asg::format_param_value(s.default_value), s.constraint_text(), s.doc);
      }
      fmt::print("\n");
    }
    return 0;
  }
  fmt::print("{:<13} {:<22} {:<8} {:<16} {}\n", "KIND", "NAME", "VERSION", "SHA256", "LIBRARY");
  // Known kinds in their order, then any kind this asg has no slot for (a plugin built for a newer one).
  std::vector<std::string> kinds = asg::known_plugin_kinds();
  for (const auto& r : catalog.plugins())
    if (std::find(kinds.begin(), kinds.end(), r->factory.kind) == kinds.end()) kinds.push_back(r->factory.kind);
  for (const auto& kind : kinds) {
    for (const auto& r : catalog.plugins()) {
      if (r->factory.kind != kind) continue;
      fmt::print("{:<13} {:<22} {:<8} {:<16} {}\n", kind, r->factory.name, r->factory.version,
                 r->library_sha256.substr(0, 16), r->library_path.string());
    }
  }
  fmt::print("\nsearched: {}\n", [&] {
    std::vector<std::string> s;
    for (const auto& p : catalog.searched()) s.push_back(p.string());
    return asg::join(s, ":");
  }());
  return 0;
}

// "text_encoder" -> "TextEncoder": the conformance suite of a kind is <Kind>Conformance.
std::string suite_of(const std::string& kind) {
  std::string out;
  bool upper = true;
  for (char c : kind) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out + "Conformance";
}

// Runs `args` (args[0] the program) with this process's environment; returns its exit status (128 + signal if killed).
int run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int rc = posix_spawn(&pid, args[0].c_str(), nullptr, nullptr, argv.data(), environ); rc != 0)
    throw config_error(fmt::format("{}: cannot start it ({})", args[0], std::strerror(rc)));
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The names of the tests `filter` selects in the suite binary (gtest --gtest_list_tests).
std::vector<std::string> listed_tests(const fs::path& binary, const std::string& filter) {
  const std::string command = fmt::format("'{}' --gtest_list_tests '--gtest_filter={}' 2>&1", binary.string(), filter);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) throw config_error(fmt::format("{}: cannot list its tests", binary.string()));
  std::vector<std::string> out;
  char line[4096];
  while (fgets(line, sizeof(line), pipe.get()))
    if (line[0] == ' ') out.push_back(line);  // test names are indented under their suite
  return out;
}

// `asg plugins test NAME`: the conformance suite of the plugin's kind, for that plugin only.
int cmd_plugins_test(const std::string& name, const std::vector<std::string>& extra_path) {
  const auto catalog = PluginCatalog::discover(std::vector<fs::path>(extra_path.begin(), extra_path.end()));
  const PluginRecord* plugin = catalog.find_any_kind(name);
  if (!plugin) {
    std::vector<std::string> all;
    for (const auto& r : catalog.plugins()) all.push_back(r->factory.name);
    throw config_error(fmt::format("no plugin named '{}' (known: {}; give its library with --plugin-path).{}", name, join(all, ", "),
                                   did_you_mean(name, all)));
  }
  const fs::path suite = bundled_conformance_binary();
  if (suite.empty() || !fs::exists(suite))
    throw config_error(fmt::format("no conformance suite at '{}': install ASG Lab with its tests (the default), or build them "
                                   "(-DASG_BUILD_TESTS=ON)",
                                   suite.string()));
  // The suite finds the plugin as asg does: the extra entries go on its ASG_PLUGIN_PATH, before the user's.
  std::vector<std::string> path(extra_path.begin(), extra_path.end());
  for (const auto& entry : path_list_from_env("ASG_PLUGIN_PATH")) path.push_back(entry.string());
  setenv("ASG_PLUGIN_PATH", join(path, ":").c_str(), 1);
  if (const fs::path fixtures = bundled_conformance_fixtures(); !fixtures.empty()) setenv("ASG_CONFORMANCE_FIXTURES", fixtures.c_str(), 1);
  const std::string filter = fmt::format("*{}.*/{}", suite_of(plugin->factory.kind), name);
  const auto tests = listed_tests(suite, filter);
  if (tests.empty())
    throw config_error(fmt::format("{} plugin '{}': the conformance suite has no tests for its kind (suites: one per kind the core "
                                   "has a slot for: {})",
                                   plugin->factory.kind, name, join(known_plugin_kinds(), ", ")));
  fmt::print("{} {} {} ({}): {} conformance tests of {}\n", plugin->factory.kind, name, plugin->factory.version,
             plugin->library_path.string(), tests.size(), suite.string());
  std::fflush(stdout);
  return run_program({suite.string(), "--gtest_filter=" + filter});
}

// @NAME@ and @ASG_VERSION@ in a template's text.
std::string fill_template(std::string text, const std::string& name) {
  text = std::regex_replace(text, std::regex("@NAME@"), name);
  return std::regex_replace(text, std::regex("@ASG_VERSION@"), ASG_VERSION);
}

// `asg new plugin --kind KIND NAME`: a plugin folder that builds against this ASG Lab and passes its kind's
// conformance suite as it is.
int cmd_new_plugin(const std::string& kind, const std::string& name, const std::string& dir_flag) {
  if (!std::regex_match(name, std::regex("[a-z][a-z0-9_]*")))
    throw config_error(fmt::format("'{}' is not a plugin name (valid: lower-case letters, digits and '_', starting with a letter)", name));
  const fs::path templates = bundled_plugin_templates();
  std::vector<std::string> kinds;
  std::error_code ec;
  if (fs::is_directory(templates, ec))
    for (const auto& entry : fs::directory_iterator(templates))
      if (entry.is_directory()) kinds.push_back(entry.path().filename().string());
  std::sort(kinds.begin(), kinds.end());
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
    throw config_error(fmt::format("--kind {}: no template for that kind (templates: {}; in {})", kind,
                                   kinds.empty() ? "none" : join(kinds, ", "), templates.string()));
  const auto catalog = PluginCatalog::discover();
  if (const PluginRecord* taken = catalog.find_any_kind(name))
    throw config_error(fmt::format("the name '{}' is taken: {} plugin '{}' {} ({}); pick another", name, taken->factory.kind, name,
                                   taken->factory.version, taken->library_path.string()));
  const fs::path dir = dir_flag.empty() ? fs::path(name) : fs::path(dir_flag);
  if (fs::exists(dir) && !fs::is_empty(dir, ec))
    throw config_error(fmt::format("{}: exists and is not empty; give another --dir", dir.string()));
  fs::create_directories(dir);
  std::vector<std::string> written;
  for (const auto& entry : fs::directory_iterator(templates / kind)) {
    std::string file = fill_template(entry.path().filename().string(), name);
    if (file.ends_with(".in")) file.resize(file.size() - 3);
    write_text_file_atomic(dir / file, fill_template(read_text_file(entry.path()), name));
    written.push_back(file);
  }
  std::sort(written.begin(), written.end());
  fmt::print("{} plugin '{}' in {}: {}\n\n", kind, name, dir.string(), join(written, ", "));
  const auto prefix = installed_prefix();
  fmt::print("cmake -S {0} -B {0}/build -DCMAKE_PREFIX_PATH={1}\ncmake --build {0}/build\n"
             "(cd {0}/build && ctest)   # the conformance suite of its kind\nasg --allow-plugin-path run {0}/experiment.toml\n",
             dir.string(), prefix ? prefix->string() : "<ASG Lab's install prefix>");
  return 0;
}

}  // namespace

void add_plugin_commands(CLI::App& app, Action& action) {
  {
    auto* cmd = app.add_subcommand("plugins", "list plugins, show one's parameters, or run its kind's conformance suite on it");
    auto args = std::make_shared<std::vector<std::string>>();
    auto path = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "'list' (default), 'show NAME' or 'test NAME'");
    cmd->add_option("--plugin-path", *path, "extra plugin directories or libraries (asg_*.so)");
    cmd->callback([&action, args, path] {
      action = [args, path] {
        if (args->empty() || (args->size() == 1 && (*args)[0] == "list")) return cmd_plugins("", *path);
        if (args->size() == 2 && (*args)[0] == "show") return cmd_plugins((*args)[1], *path);
        if (args->size() == 2 && (*args)[0] == "test") return cmd_plugins_test((*args)[1], *path);
        throw config_error("usage: asg plugins [list] | asg plugins show NAME | asg plugins test NAME [--plugin-path P]");
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("new", "start a plugin: asg new plugin --kind KIND NAME [--dir D]");
    auto* plugin = cmd->add_subcommand("plugin", "a plugin folder (source, CMakeLists.txt, README, example experiment) that "
                                                 "builds against this ASG Lab and passes its kind's conformance suite");
    cmd->require_subcommand(1);
    auto kind = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto dir = std::make_shared<std::string>();
    plugin->add_option("--kind", *kind, "plugin kind (templates: metric, temporal)")->required();
    plugin->add_option("name", *name, "plugin name")->required();
    plugin->add_option("--dir", *dir, "folder to write (default: ./NAME)");
    plugin->callback([&action, kind, name, dir] { action = [kind, name, dir] { return cmd_new_plugin(*kind, *name, *dir); }; });
  }
}

}  // namespace asg::cli
