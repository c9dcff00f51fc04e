// Command lines and statistics shared by the benchmarks: integer flags (--name N) with defaults and lower
// bounds, --check, and the median. No torch.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace asg::bench {

class BenchArgs {
 public:
  struct Flag {
    std::string name;  // without "--"
    int value;         // the default, then what was given
    int min;           // smallest accepted value
  };
  explicit BenchArgs(std::vector<Flag> flags) : flags_(std::move(flags)) {}

  // False, after saying why on stderr, for an unknown flag, a missing or non-numeric value or one below
  // its minimum; the benchmark then exits 2.
  bool parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      if (!std::strcmp(argv[i], "--check")) {
        check = true;
        continue;
      }
      Flag* flag = nullptr;
      for (auto& f : flags_)
        if (argv[i] == "--" + f.name) flag = &f;
      if (!flag) {
        fmt::print(stderr, "unknown argument '{}' (valid: {}--check)\n", argv[i], usage());
        return false;
      }
      char* end = nullptr;
      const long v = i + 1 < argc ? std::strtol(argv[i + 1], &end, 10) : 0;
      if (i + 1 >= argc || *end != '\0' || v < flag->min) {
        fmt::print(stderr, "--{} needs an integer >= {}\n", flag->name, flag->min);
        return false;
      }
      flag->value = static_cast<int>(v);
      ++i;
    }
    return true;
  }
  int operator[](const std::string& name) const {
    for (const auto& f : flags_)
      if (f.name == name) return f.value;
    std::abort();  // a benchmark asking for a flag it did not declare
  }
  bool check = false;

 private:
  std::string usage() const {
    std::string out;
    for (const auto& f : flags_) out += "--" + f.name + " N, ";
    return out;
  }
  std::vector<Flag> flags_;
};

// The upper median; NaN for no values (a side that never ran).
inline double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace asg::bench
