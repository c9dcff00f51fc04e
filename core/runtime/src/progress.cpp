#include "asg/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace asg {

Progress::Progress(std::string label, int64_t total, std::function<void(const std::string&)> sink)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), sink_(std::move(sink)),
      tty_(isatty(fileno(stdout)) != 0) {
  start_ = last_draw_ = last_line_ = std::chrono::steady_clock::now();
}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  auto total = static_cast<int64_t>(std::llround(s));
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, (total / 60) % 60, total % 60);
  return fmt::format("{:02}:{:02}", total / 60, total % 60);
}

std::string Progress::line(int64_t done, const std::string& extra, bool bar) const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? done / elapsed : 0;
  double eta = rate > 0 ? (total_ - done) / rate : NAN;
  std::string head = fmt::format("{} {}/{}", label_, done, total_);
  if (bar) {
    constexpr int kWidth = 24;
    int filled = static_cast<int>(kWidth * done / total_);
    head = fmt::format("{} [{}{}] {}/{}", label_, std::string(filled, '#'), std::string(kWidth - filled, '.'), done, total_);
  }
  return fmt::format("{} | {:.2f} it/s | elapsed {} | ETA {}{}{}", head, rate, format_duration(elapsed),
                     format_duration(eta), extra.empty() ? "" : " | ", extra);
}

void Progress::update(int64_t done, const std::string& extra) {
  auto now = std::chrono::steady_clock::now();
  if (tty_ && now - last_draw_ >= std::chrono::milliseconds(200)) {
    fmt::print("\r\033[K{}", line(done, extra, true));
    std::fflush(stdout);
    last_draw_ = now;
  }
  // Plain lines: every 10% or every 30 s, whichever comes first. They also go to the run log.
  bool decile = (done * 10 / total_) != (last_reported_ * 10 / total_);
  if (done != last_reported_ && (decile || now - last_line_ >= std::chrono::seconds(30))) {
    std::string l = line(done, extra, false);
    if (!tty_) {
      fmt::print("{}\n", l);
      std::fflush(stdout);
    }
    if (sink_) sink_(l);
    last_line_ = now;
    last_reported_ = done;
  }
}

void Progress::finish(const std::string& extra) {
  std::string l = line(total_, extra, false);
  if (tty_) fmt::print("\r\033[K");
  fmt::print("{}\n", l);
  std::fflush(stdout);
  if (sink_) sink_(l);
}

}  // namespace asg
