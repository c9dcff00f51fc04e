// Names in messages: the nearest of a list to a mistyped name ("did you mean"), and lists joined. Torch-free.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asg {

// Levenshtein edit distance.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `name`, if it is close enough to be a plausible typo.
std::optional<std::string> nearest_match(std::string_view name, const std::vector<std::string>& candidates);
// " Did you mean 'x'?" or "".
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

std::string join(const std::vector<std::string>& parts, std::string_view sep);

}  // namespace asg
