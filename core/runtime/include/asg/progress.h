// Progress reporting: a redrawn bar with ETA on a terminal, plain periodic lines otherwise (logs, CI).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace asg {

class Progress {
 public:
  // `sink` receives plain lines (the run log); the bar itself goes to stdout only.
  Progress(std::string label, int64_t total, std::function<void(const std::string&)> sink);
  // `extra` is appended (e.g. "loss 0.1234").
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");

  static std::string format_duration(double seconds);

 private:
  std::string line(int64_t done, const std::string& extra, bool bar) const;
  std::string label_;
  int64_t total_;
  std::function<void(const std::string&)> sink_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_, last_line_;
  int64_t last_reported_ = -1;
};

}  // namespace asg
