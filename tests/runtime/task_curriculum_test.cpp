// RDTF's curriculum over the condition tasks (asg/task_curriculum.h): the static schedule, the PID-chosen
// presets, the draw, and the state a checkpoint keeps.
#include <gtest/gtest.h>

#include <cmath>

#include "asg/error.h"
#include "asg/task_curriculum.h"

using asg::CurriculumKind;
using asg::TaskCurriculum;
using asg::TaskGroup;

namespace {
// [conditioning] tasks = ["generation", "image", "interpolation", "prediction"]
const std::vector<TaskGroup> kRdtfTasks = {TaskGroup::Generation, TaskGroup::Generation, TaskGroup::Interpolation, TaskGroup::Prediction};

void expect_weights(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "task " << i;
}
}  // namespace

TEST(TaskCurriculum, UniformWeighsEveryTaskAlike) {
  TaskCurriculum c(CurriculumKind::Uniform, kRdtfTasks, 100);
  expect_weights(c.weights(0), {1, 1, 1, 1});
  expect_weights(c.weights(99), {1, 1, 1, 1});
}

TEST(TaskCurriculum, TheStaticScheduleMovesFromInterpolationToGeneration) {
  TaskCurriculum c(CurriculumKind::Linear, kRdtfTasks, 1000);
  // Generation's weight is shared by its two tasks.
  expect_weights(c.weights(0), {0.05, 0.05, 0.9, 0.7});
  expect_weights(c.weights(250), {0.15, 0.15, 0.7, 0.6});
  expect_weights(c.weights(500), {0.25, 0.25, 0.5, 0.5});
  expect_weights(c.weights(1000), {0.45, 0.45, 0.1, 0.3});
}

TEST(TaskCurriculum, ThePidSignalOfTheLossPicksThePreset) {
  TaskCurriculum rising(CurriculumKind::Adaptive, kRdtfTasks, 1000), falling(CurriculumKind::Adaptive, kRdtfTasks, 1000);
  EXPECT_EQ(rising.preset(), 2);  // before any loss: the middle preset
  for (int i = 0; i < 50; ++i) {
    rising.observe(0.1 + 0.01 * i);
    falling.observe(1.0 - 0.01 * i);
  }
  // A loss higher than any before: the easiest task (interpolation) is favoured; lower than any: generation.
  EXPECT_EQ(rising.preset(), 0);
  EXPECT_EQ(falling.preset(), 4);
  // Static part at step 0 plus preset 0 (generation 0.1, interpolation 0.9, prediction 0.5).
  expect_weights(rising.weights(0), {0.1, 0.1, 1.8, 1.2});
  expect_weights(falling.weights(0), {0.5, 0.5, 1.0, 1.2});
  // P = 5 L + 3 mean(L) + 1.3 (L - L_prev): a loss that only equals the window's median sits in the middle.
  TaskCurriculum flat(CurriculumKind::Adaptive, kRdtfTasks, 1000);
  for (double loss : {0.3, 0.1, 0.5, 0.2, 0.4}) flat.observe(loss);
  flat.observe(0.3);
  EXPECT_EQ(flat.preset(), 2);
  // Non-finite losses are not observed; the static curriculum ignores losses.
  flat.observe(std::nan(""));
  EXPECT_EQ(flat.preset(), 2);
  TaskCurriculum linear(CurriculumKind::Linear, kRdtfTasks, 1000);
  linear.observe(10);
  expect_weights(linear.weights(0), {0.05, 0.05, 0.9, 0.7});
}

TEST(TaskCurriculum, DrawsInProportionToTheWeights) {
  EXPECT_EQ(TaskCurriculum::pick({1, 3}, 0.0), 0u);
  EXPECT_EQ(TaskCurriculum::pick({1, 3}, 0.24), 0u);
  EXPECT_EQ(TaskCurriculum::pick({1, 3}, 0.26), 1u);
  EXPECT_EQ(TaskCurriculum::pick({1, 3}, 0.999), 1u);
  EXPECT_EQ(TaskCurriculum::pick({0, 2, 0}, 0.5), 1u);
}

TEST(TaskCurriculum, ItsStateRestoresTheSameFuture) {
  TaskCurriculum a(CurriculumKind::Adaptive, kRdtfTasks, 1000), b(CurriculumKind::Adaptive, kRdtfTasks, 1000);
  for (int i = 0; i < 1200; ++i) a.observe(std::sin(0.1 * i) + 2);  // past the 1000-step window
  b.restore(a.state());
  for (int i = 0; i < 30; ++i) {
    const double loss = std::cos(0.3 * i) + 2;
    a.observe(loss);
    b.observe(loss);
    EXPECT_EQ(a.preset(), b.preset()) << i;
  }
  EXPECT_EQ(a.state(), b.state());
  EXPECT_THROW(b.restore({1.0}), asg::Error);
}
