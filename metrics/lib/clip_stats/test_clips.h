// Constructed clips for the temporal and alpha metric tests: straight RGBA [B, T, 4, H, W] in [0, 1].
#pragma once

#include <torch/torch.h>

#include <vector>

#include "asg/kinds/dataset.h"
#include "asg/kinds/metric.h"

namespace asg::testing {

inline MetricContext clip_context(int64_t frames, int64_t size = 16) {
  MetricContext ctx;
  ctx.data = DatasetInfo{frames, size, size, 8.0, {}, {}};
  ctx.dataset_name = "constructed";
  return ctx;
}

// An opaque red disc of `radius` whose centre moves by `step` pixels per frame along x on a transparent
// canvas that wraps around (distances are periodic in x), so a motion of size / frames pixels per frame
// loops exactly and every step changes the same number of pixels.
inline torch::Tensor moving_disc(int64_t frames, int64_t size, double radius, double step, double start_x = 4) {
  auto clip = torch::zeros({frames, 4, size, size});
  auto ys = torch::arange(size).view({size, 1}).to(torch::kFloat), xs = torch::arange(size).view({1, size}).to(torch::kFloat);
  for (int64_t t = 0; t < frames; ++t) {
    const double cx = start_x + step * static_cast<double>(t);
    auto dx = torch::remainder(xs - cx, static_cast<double>(size));
    dx = torch::minimum(dx, size - dx);
    auto inside = (dx.pow(2) + (ys - size / 2.0).pow(2) <= radius * radius).to(torch::kFloat);
    clip[t][0] = inside;
    clip[t][3] = inside;
  }
  return clip;
}

// An opaque red square of side 2 * half moving `step` pixels per frame along x (no wrapping): every pixel
// it passes is covered once and uncovered once, never for a single frame when 2 * half > step.
inline torch::Tensor moving_square(int64_t frames, int64_t size, int64_t half, int64_t step, int64_t start_x = 2) {
  auto clip = torch::zeros({frames, 4, size, size});
  for (int64_t t = 0; t < frames; ++t) {
    const int64_t x0 = start_x + step * t;
    auto block = clip[t].narrow(1, size / 2 - half, 2 * half).narrow(2, x0, std::min(2 * half, size - x0));
    block[0].fill_(1);
    block[3].fill_(1);
  }
  return clip;
}

inline std::vector<Sticker> as_references(const torch::Tensor& clips) {
  std::vector<Sticker> out;
  for (int64_t i = 0; i < clips.size(0); ++i) out.push_back(Sticker{std::to_string(i), clips[i], {}, "", {}, {}});
  return out;
}

}  // namespace asg::testing
