// Image conditioning: which frames of a clip a task gives the backbone, and the backbone's input built from them.
// Host-only.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cstdint>

#include "asg/params.h"

namespace asg {

// Image conditioning (I2VGen-XL; RDTF's condition mask): some frames of the clean clip are given to the
// backbone, which sees [x_t, x0 * m, m] along channels, m the per-frame 0/1 mask. A task decides m:
// - generation:    no frame (text to sticker)
// - image:         one frame: in training a random one (RDTF) or, with image_frame_first, the first
//                  (I2VGen-XL); the first at evaluation
// - interpolation: every other frame from a random phase, or every third from the first, in training;
//                  the even frames (0, 2, 4, ...) at evaluation
// - prediction:    the first or (as often) the last k frames, k uniform in [1, T-1], in training; the first
//                  half (T/2 frames, rounded down, at least 1) at evaluation
enum class ConditionTask { Generation, Image, Interpolation, Prediction };
const EnumNames<ConditionTask>& condition_task_names();
// A [T] float mask of the given frames. Training masks draw from `generator` (CPU); evaluation's are fixed.
torch::Tensor training_condition_mask(ConditionTask task, int64_t frames, at::Generator& generator, bool image_frame_first = false);
torch::Tensor evaluation_condition_mask(ConditionTask task, int64_t frames);
// The backbone's input [B, 2C+1, T, H, W]: x_t, then the clean clip where given (zero elsewhere), then the
// mask as one channel. mask is [B, T].
torch::Tensor with_condition(const torch::Tensor& x_t, const torch::Tensor& x0, const torch::Tensor& mask);

}  // namespace asg
