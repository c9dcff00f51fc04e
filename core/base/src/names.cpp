// Edit distance, the nearest candidate, "did you mean", joining.
#include "asg/names.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace asg {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t subst = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::optional<std::string> nearest_match(std::string_view name, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const auto& c : candidates) {
    size_t d = edit_distance(name, c);
    if (!best || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  // A plausible typo: at most a third of the longer name (and at least 2 edits) away, or a prefix.
  if (best) {
    size_t limit = std::max<size_t>(2, std::max(name.size(), best->size()) / 3);
    bool prefix = !name.empty() && (best->rfind(name, 0) == 0 || std::string_view(name).rfind(*best, 0) == 0);
    if (best_distance > limit && !prefix) best.reset();
  }
  return best;
}

std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates) {
  auto m = nearest_match(name, candidates);
  return m ? fmt::format(" Did you mean '{}'?", *m) : std::string();
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace asg
