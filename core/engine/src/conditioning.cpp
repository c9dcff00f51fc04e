// The condition masks of each task, in training and at evaluation, and the conditioned backbone input.
#include "asg/conditioning.h"

#include <fmt/format.h>

#include "asg/error.h"

namespace asg {

const EnumNames<ConditionTask>& condition_task_names() {
  static const EnumNames<ConditionTask> names{{ConditionTask::Generation, "generation"},
                                              {ConditionTask::Image, "image"},
                                              {ConditionTask::Interpolation, "interpolation"},
                                              {ConditionTask::Prediction, "prediction"}};
  return names;
}

torch::Tensor training_condition_mask(ConditionTask task, int64_t frames, at::Generator& generator, bool image_frame_first) {
  auto mask = torch::zeros({frames});
  auto m = mask.accessor<float, 1>();
  auto draw = [&](int64_t n) { return torch::randint(0, n, {1}, generator, torch::kLong).item<int64_t>(); };
  switch (task) {
    case ConditionTask::Generation: break;
    case ConditionTask::Image: m[image_frame_first ? 0 : draw(frames)] = 1; break;
    case ConditionTask::Interpolation: {
      // RDTF's patterns: [0 1 0 1 ...], [1 0 1 0 ...], [1 0 0 1 0 0 ...]
      const int64_t pattern = draw(3);
      const int64_t stride = pattern == 2 ? 3 : 2, phase = pattern == 1 ? 1 : 0;
      for (int64_t i = phase; i < frames; i += stride) m[i] = 1;
      break;
    }
    case ConditionTask::Prediction: {
      if (frames < 2) break;
      const int64_t k = 1 + draw(frames - 1);
      const bool forecast = draw(2) == 0;  // given the start, predict the end; else the other way round
      for (int64_t i = 0; i < k; ++i) m[forecast ? i : frames - 1 - i] = 1;
      break;
    }
  }
  return mask;
}

torch::Tensor evaluation_condition_mask(ConditionTask task, int64_t frames) {
  auto mask = torch::zeros({frames});
  auto m = mask.accessor<float, 1>();
  switch (task) {
    case ConditionTask::Generation: break;
    case ConditionTask::Image: m[0] = 1; break;
    case ConditionTask::Interpolation:
      for (int64_t i = 0; i < frames; i += 2) m[i] = 1;
      break;
    case ConditionTask::Prediction:
      for (int64_t i = 0; i < std::max<int64_t>(1, frames / 2); ++i) m[i] = 1;
      break;
  }
  return mask;
}

torch::Tensor with_condition(const torch::Tensor& x_t, const torch::Tensor& x0, const torch::Tensor& mask) {
  auto m = mask.to(x_t.device(), x_t.scalar_type()).view({mask.size(0), 1, mask.size(1), 1, 1});
  auto mask_channel = m.expand({x_t.size(0), 1, x_t.size(2), x_t.size(3), x_t.size(4)});
  return torch::cat({x_t, x0 * m, mask_channel}, 1);
}

}  // namespace asg
