// Summary statistics over the runs of a leaderboard row or a summary group. Private to the reports.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

namespace asg::reports {

struct Stat {
  double mean = std::nan(""), std = std::nan("");
  size_t n = 0;  // finite values
};

inline Stat stat_of(const std::vector<double>& values) {
  Stat s;
  s.n = values.size();
  if (values.empty()) return s;
  double sum = 0;
  for (double x : values) sum += x;
  s.mean = sum / values.size();
  if (values.size() > 1) {
    double ss = 0;
    for (double x : values) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / (values.size() - 1));  // sample std (n - 1), as papers report over seeds
  }
  return s;
}

}  // namespace asg::reports
