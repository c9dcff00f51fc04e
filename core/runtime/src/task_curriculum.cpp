// RDTF's curriculum over the condition tasks (see task_curriculum.h).
#include "asg/task_curriculum.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

#include "asg/error.h"

namespace asg {
namespace {

// [start, middle, end] of each group's static weight.
constexpr std::array<std::array<double, 3>, 3> kStatic = {{{0.1, 0.5, 0.9}, {0.9, 0.5, 0.1}, {0.7, 0.5, 0.3}}};

double static_weight(TaskGroup group, double progress) {
  const auto& w = kStatic[static_cast<size_t>(group)];
  const double p = std::clamp(progress, 0.0, 1.0);
  return p <= 0.5 ? w[0] + (w[1] - w[0]) * (p / 0.5) : w[1] + (w[2] - w[1]) * ((p - 0.5) / 0.5);
}

double preset_weight(TaskGroup group, int preset) {
  switch (group) {
    case TaskGroup::Generation: return 0.1 + 0.2 * preset;
    case TaskGroup::Interpolation: return 0.9 - 0.2 * preset;
    case TaskGroup::Prediction: return 0.5;
  }
  return 0;
}

}  // namespace

TaskCurriculum::TaskCurriculum(CurriculumKind kind, std::vector<TaskGroup> groups, int64_t total_steps)
    : kind_(kind), groups_(std::move(groups)), total_steps_(std::max<int64_t>(1, total_steps)) {}

std::vector<double> TaskCurriculum::weights(int64_t step) const {
  std::vector<double> out(groups_.size(), 1.0);
  if (kind_ == CurriculumKind::Uniform) return out;
  std::array<int, 3> members{};
  for (auto g : groups_) ++members[static_cast<size_t>(g)];
  const double progress = static_cast<double>(step) / static_cast<double>(total_steps_);
  for (size_t i = 0; i < groups_.size(); ++i) {
    double w = static_weight(groups_[i], progress);
    if (kind_ == CurriculumKind::Adaptive) w += preset_weight(groups_[i], preset_);
    out[i] = w / members[static_cast<size_t>(groups_[i])];
  }
  return out;
}

size_t TaskCurriculum::pick(const std::vector<double>& weights, double u) {
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  double cumulative = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    cumulative += weights[i];
    if (u * total < cumulative) return i;
  }
  return weights.size() - 1;
}

void TaskCurriculum::observe(double loss) {
  if (kind_ != CurriculumKind::Adaptive || !std::isfinite(loss)) return;
  const double previous = losses_.empty() ? loss : losses_.back();
  losses_.push_back(loss);
  if (losses_.size() > kWindow) losses_.pop_front();
  const double mean = std::accumulate(losses_.begin(), losses_.end(), 0.0) / static_cast<double>(losses_.size());
  const double signal = kProportional * loss + kIntegral * mean + kDerivative * (loss - previous);
  signals_.push_back(signal);
  if (signals_.size() > kWindow) signals_.pop_front();
  const auto at_or_below = std::count_if(signals_.begin(), signals_.end(), [&](double s) { return s <= signal; });
  const double rank = static_cast<double>(at_or_below) / static_cast<double>(signals_.size());
  preset_ = std::min(4, static_cast<int>(std::floor(5.0 * (1.0 - rank))));
}

std::vector<double> TaskCurriculum::state() const {
  std::vector<double> s = {static_cast<double>(preset_), static_cast<double>(losses_.size())};
  s.insert(s.end(), losses_.begin(), losses_.end());
  s.insert(s.end(), signals_.begin(), signals_.end());
  return s;
}

void TaskCurriculum::restore(const std::vector<double>& s) {
  if (s.size() < 2) throw data_error("curriculum state: too short");
  const auto losses = static_cast<size_t>(s[1]);
  if (s.size() < 2 + losses || s.size() - 2 - losses > kWindow || losses > kWindow)
    throw data_error("curriculum state: inconsistent sizes");
  preset_ = static_cast<int>(s[0]);
  losses_.assign(s.begin() + 2, s.begin() + 2 + static_cast<std::ptrdiff_t>(losses));
  signals_.assign(s.begin() + 2 + static_cast<std::ptrdiff_t>(losses), s.end());
}

}  // namespace asg
