// Composing an experiment file: `base` inheritance (deep merges, `__replace__`, a slot switched to another
// plugin starting afresh), `--set` overrides, and where every key and value came from, for error messages.
// Internal to the core.
#pragma once

#include <toml++/toml.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace asg::config {

namespace fs = std::filesystem;

// Where each key and value came from: "file:line:col" per dotted path, or the --set that put it
// there. toml++ does not copy source positions when nodes are copied, so composition records them
// from every file as it is parsed; later files overwrite earlier entries, as their values do.
struct Origins {
  std::map<std::string, std::string> overridden;  // dotted key -> "--set a.b=v"
  std::map<std::string, std::string> values;      // dotted key -> position of the value
  std::map<std::string, std::string> keys;        // dotted key -> position of the key
  std::map<std::string, fs::path> dirs;            // dotted key -> directory of the file that set it

  static std::string position(const toml::source_region& src) {
    if (!src.path) return "";
    return fmt::format("{}:{}:{}", *src.path, src.begin.line, src.begin.column);
  }
  void record(const toml::table& table, const std::string& prefix) {
    for (auto&& [key, value] : table) {
      std::string dotted = prefix + std::string(key.str());
      keys[dotted] = position(key.source());
      values[dotted] = position(value.source());
      if (value.source().path) dirs[dotted] = fs::path(*value.source().path).parent_path();
      if (auto t = value.as_table()) record(*t, dotted + ".");
      if (auto a = value.as_array()) {
        for (size_t i = 0; i < a->size(); ++i) {
          std::string item = fmt::format("{}.{}", dotted, i);
          values[item] = position(a->get(i)->source());
          if (a->get(i)->source().path) dirs[item] = fs::path(*a->get(i)->source().path).parent_path();
          if (auto t = a->get(i)->as_table()) record(*t, item + ".");
        }
      }
    }
  }
  std::string lookup(const std::map<std::string, std::string>& where, const std::string& dotted) const {
    for (const auto& [key, text] : overridden)
      if (dotted == key || dotted.rfind(key + ".", 0) == 0) return "command line " + text;
    auto it = where.find(dotted);
    return it != where.end() && !it->second.empty() ? it->second : fallback;
  }
  std::string where(const std::string& dotted) const { return lookup(values, dotted); }
  // Relative paths in a value are relative to the file that set it (the working directory for --set).
  fs::path dir_of(const std::string& dotted) const {
    for (const auto& [key, text] : overridden)
      if (dotted == key || dotted.rfind(key + ".", 0) == 0) return fs::current_path();
    auto it = dirs.find(dotted);
    return it != dirs.end() ? it->second : fs::current_path();
  }
  std::string where_key(const std::string& dotted) const { return lookup(keys, dotted); }
  std::string fallback = "<config>";
};

// A value as the user wrote it, shortened for an error message.
std::string node_text(const toml::node& node);
// "int", "string", "table", ...: a TOML value's type as error messages name it.
const char* node_type_name(const toml::node& node);

// Parses `file` and the files its `base` lists (before it, recursively; `stack` holds the files being composed,
// to refuse cycles) into one table, recording every key's origin.
toml::table compose_file(const fs::path& file, std::vector<fs::path>& stack, Origins& origins);

// Applies one `--set section.key=value` (the value is TOML, or a bare string when it does not parse).
void apply_override(toml::table& root, const std::string& text, Origins& origins);

}  // namespace asg::config
