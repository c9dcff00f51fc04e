// How training draws each clip's condition task ([conditioning] curriculum): uniformly, or by RDTF's
// difficulty-adaptive curriculum (DCL, RDTF Table 6 and its released code) or its static part alone (Table 4's
// "linear" curriculum).
//
// Every task belongs to one of RDTF's three groups: generation (the generation and image tasks: t2v, i2v,
// it2v), interpolation, prediction. A group's weight at training progress p = step / steps is
//   static(p)   piecewise linear through [start, middle, end] at p = 0, 0.5, 1:
//               generation 0.1 -> 0.5 -> 0.9, interpolation 0.9 -> 0.5 -> 0.1, prediction 0.7 -> 0.5 -> 0.3
//   adaptive    (DCL only) one of 5 presets, generation 0.1 + 0.2 i, interpolation 0.9 - 0.2 i, prediction 0.5,
//               chosen by a PID signal of the training loss, P = K_p L_t + K_i mean(L over the last <= 1000
//               steps) + K_d (L_t - L_{t-1}) with K_p = 5, K_i = 3, K_d = 1.3: i = min(4, floor(5 (1 - r))), r the
//               fraction of the last <= 1000 P values at or below this one. A loss high for the run so far
//               picks the presets that favour interpolation (the easiest task: most frames given); a low one,
//               generation.
// and the group's weight is split equally between its tasks in [conditioning] tasks; a clip's task is drawn in
// proportion to the weights (Python's random.choices).
//
// Assumptions, because RDTF's released code is partly broken (an undefined curriculum_learning_end, the
// base-step function commented out): the static part runs over the whole of training, the PID rank picks
// the preset in the direction above, and the window of both the mean and the ranking is 1000 steps.
// Torch-free.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace asg {

enum class TaskGroup { Generation, Interpolation, Prediction };

enum class CurriculumKind { Uniform, Linear, Adaptive };

class TaskCurriculum {
 public:
  // groups: each task's group, in [conditioning] tasks order; total_steps: the run's optimizer steps.
  TaskCurriculum(CurriculumKind kind, std::vector<TaskGroup> groups, int64_t total_steps);

  // The tasks' weights at optimizer step `step` (not normalised; all equal for Uniform).
  std::vector<double> weights(int64_t step) const;
  // The index of the task a uniform draw u in [0, 1) picks with these weights.
  static size_t pick(const std::vector<double>& weights, double u);
  // The loss of the step just taken: updates the PID signal (Adaptive only).
  void observe(double loss);
  // The preset the PID signal chose last, 0..4 (2 before any loss; Adaptive only).
  int preset() const { return preset_; }

  // What a checkpoint keeps so a resumed run draws exactly as an uninterrupted one: the recent losses, the
  // recent P values, the preset.
  std::vector<double> state() const;
  void restore(const std::vector<double>& state);

  static constexpr double kProportional = 5.0, kIntegral = 3.0, kDerivative = 1.3;
  static constexpr size_t kWindow = 1000;

 private:
  CurriculumKind kind_;
  std::vector<TaskGroup> groups_;
  int64_t total_steps_;
  std::deque<double> losses_, signals_;
  int preset_ = 2;
};

}  // namespace asg
