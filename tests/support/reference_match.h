// How the exactness tests compare ASG Lab's output with a Python reference's (diffusers, transformers,
// open_clip, released research code) on the same inputs and weights: the largest absolute difference,
// relative to the reference's largest magnitude. One number per tensor, so a failure says how far off it is.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace asg::testing {

// max |actual - reference| / max |reference| (0 when both are zero).
inline double relative_difference(const torch::Tensor& actual, const torch::Tensor& reference) {
  auto a = actual.detach().to(torch::kCPU, torch::kFloat64), r = reference.detach().to(torch::kCPU, torch::kFloat64);
  const double scale = r.abs().max().item<double>(), diff = (a - r).abs().max().item<double>();
  return scale == 0 ? diff : diff / scale;
}

inline ::testing::AssertionResult matches_reference(const torch::Tensor& actual, const torch::Tensor& reference,
                                                    double tolerance = 1e-5) {
  if (actual.sizes() != reference.sizes())
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " but the reference is " << reference.sizes();
  const double d = relative_difference(actual, reference);
  if (d <= tolerance) return ::testing::AssertionSuccess() << "relative difference " << d;
  return ::testing::AssertionFailure() << "relative difference " << d << " > " << tolerance;
}

}  // namespace asg::testing
