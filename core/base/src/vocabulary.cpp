#include "asg/vocabulary.h"

#include <array>
#include <cstdio>
#include <optional>

namespace asg {

namespace {

std::optional<std::array<long, 3>> parse_semver(const std::string& text) {
  std::array<long, 3> v{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%ld.%ld.%ld%n", &v[0], &v[1], &v[2], &consumed) != 3 ||
      consumed != static_cast<int>(text.size()))
    return std::nullopt;
  return v;
}

}  // namespace

bool vocabulary_satisfies(const Vocabulary& provided, const Vocabulary& required) {
  if (provided.name != required.name) return false;
  auto p = parse_semver(provided.version), r = parse_semver(required.version);
  return p && r && (*p)[0] == (*r)[0] && (*p)[1] >= (*r)[1];
}

}  // namespace asg
