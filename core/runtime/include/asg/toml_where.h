// "file:line:column" of a TOML node, for errors in files the core reads with toml++ (benchmark definitions, sweep
// files); the file alone when the node has no source position. Host-only (needs toml++).
#pragma once

#include <fmt/format.h>
#include <toml++/toml.h>

#include <filesystem>
#include <string>

namespace asg {

inline std::string toml_where(const std::filesystem::path& file, const toml::node& node) {
  const auto& src = node.source();
  return src.begin.line > 0 ? fmt::format("{}:{}:{}", file.string(), src.begin.line, src.begin.column) : file.string();
}

}  // namespace asg
