#include "composition.h"

#include <algorithm>
#include <sstream>

#include "asg/error.h"
#include "asg/names.h"

namespace asg::config {

namespace {

constexpr const char* kReplaceKey = "__replace__";

void merge_into(toml::table& dst, const toml::table& src) {
  for (auto&& [key, value] : src) {
    if (auto src_table = value.as_table()) {
      bool replace = src_table->contains(kReplaceKey);
      auto dst_node = dst.get(key);
      // A slot switched to another plugin starts afresh: the old plugin's keys mean nothing to the new one.
      if (dst_node && dst_node->is_table()) {
        const auto* old_plugin = dst_node->as_table()->get_as<std::string>("plugin");
        const auto* new_plugin = src_table->get_as<std::string>("plugin");
        if (old_plugin && new_plugin && old_plugin->get() != new_plugin->get()) replace = true;
      }
      if (!replace && dst_node && dst_node->is_table()) {
        merge_into(*dst_node->as_table(), *src_table);
        continue;
      }
      toml::table copy = *src_table;
      copy.erase(kReplaceKey);
      dst.insert_or_assign(key, std::move(copy));
    } else {
      value.visit([&](auto&& n) { dst.insert_or_assign(key, n); });
    }
  }
}

toml::table parse_toml_file(const fs::path& file) {
  if (!fs::exists(file)) throw config_error(fmt::format("{}: experiment file does not exist", file.string()));
  try {
    return toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    throw config_error(fmt::format("{}:{}:{}: TOML syntax error: {}", file.string(), b.line, b.column, e.description()));
  }
}

}  // namespace

std::string node_text(const toml::node& node) {
  std::ostringstream ss;
  if (auto s = node.as_string()) {
    ss << '"' << s->get() << '"';
  } else if (node.is_table()) {
    ss << "{...}";
  } else {
    node.visit([&](auto&& n) { ss << toml::toml_formatter(n, toml::format_flags::none); });
  }
  std::string out = ss.str();
  if (out.size() > 60) out = out.substr(0, 57) + "...";
  return out;
}

const char* node_type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "int";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "bool";
    case toml::node_type::array: return "array";
    case toml::node_type::table: return "table";
    default: return "date/time";
  }
}

// ---- composition ------------------------------------------------------------------------------

toml::table compose_file(const fs::path& file, std::vector<fs::path>& stack, Origins& origins) {
  fs::path canonical = fs::weakly_canonical(file);
  if (std::find(stack.begin(), stack.end(), canonical) != stack.end()) {
    std::vector<std::string> chain;
    for (const auto& p : stack) chain.push_back(p.string());
    chain.push_back(canonical.string());
    throw config_error(fmt::format("{}: circular base inheritance: {}", file.string(), join(chain, " -> ")));
  }
  stack.push_back(canonical);
  toml::table own = parse_toml_file(file);
  toml::table merged;
  if (auto base = own.get("base")) {
    auto arr = base->as_array();
    std::string where = fmt::format("{}:{}:{}", file.string(), base->source().begin.line, base->source().begin.column);
    if (!arr) throw config_error(fmt::format("{}: base must be an array of relative paths, e.g. base = [\"base.toml\"]", where));
    for (auto&& item : *arr) {
      auto s = item.as_string();
      if (!s) throw config_error(fmt::format("{}: base entries must be strings (paths relative to this file), got {}", where, node_text(item)));
      fs::path base_file = file.parent_path() / s->get();
      if (!fs::exists(base_file))
        throw config_error(fmt::format("{}: base file '{}' does not exist (looked for {})", where, s->get(), base_file.string()));
      merge_into(merged, compose_file(base_file, stack, origins));
    }
    own.erase("base");
  }
  origins.record(own, "");
  merge_into(merged, own);
  stack.pop_back();
  return merged;
}

void apply_override(toml::table& root, const std::string& text, Origins& origins) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw config_error(fmt::format("--set '{}': expected section.key=value, e.g. --set train.steps=100", text));
  std::string dotted = text.substr(0, eq), raw = text.substr(eq + 1);
  std::vector<std::string> parts;
  std::stringstream ss(dotted);
  for (std::string p; std::getline(ss, p, '.');) {
    if (p.empty()) throw config_error(fmt::format("--set '{}': empty key segment in '{}'", text, dotted));
    parts.push_back(p);
  }
  // Values are TOML (3, 0.5, true, "x", [1, 2]); anything that does not parse is taken as a bare string.
  toml::table holder;
  try {
    holder = toml::parse("v = " + raw);
  } catch (const toml::parse_error&) {
    holder.insert_or_assign("v", raw);
  }
  toml::table* t = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto child = t->get(parts[i]);
    if (!child) {
      t->insert_or_assign(parts[i], toml::table{});
      child = t->get(parts[i]);
    }
    if (auto arr = child->as_array()) {
      // metrics.0.key: index into an array of tables
      size_t index = 0;
      try { index = std::stoul(parts[i + 1]); } catch (...) {
        throw config_error(fmt::format("--set '{}': '{}' is an array; address an element by index, e.g. {}.0.key", text, parts[i], parts[i]));
      }
      if (index >= arr->size() || !arr->get(index)->is_table())
        throw config_error(fmt::format("--set '{}': {} has {} entries (valid indices 0..{})", text, parts[i], arr->size(), arr->size() == 0 ? 0 : arr->size() - 1));
      t = arr->get(index)->as_table();
      ++i;
      if (i + 1 >= parts.size()) throw config_error(fmt::format("--set '{}': missing key after index", text));
      continue;
    }
    if (!child->is_table())
      throw config_error(fmt::format("--set '{}': '{}' is a {} value, not a table", text, parts[i], node_type_name(*child)));
    t = child->as_table();
  }
  holder.get("v")->visit([&](auto&& n) { t->insert_or_assign(parts.back(), n); });
  origins.overridden[dotted] = "--set " + text;
}

}  // namespace asg::config
