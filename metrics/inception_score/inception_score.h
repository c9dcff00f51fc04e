// The Inception Score of class probabilities, as StyleGAN-V's src/metrics/inception_score.py (and tfgan's
// _expected_inception_score) compute it: the samples in order, cut into `splits` contiguous chunks
// (chunk i = rows [i*n/splits, (i+1)*n/splits)); per chunk exp(mean_x sum_y p(y|x) (log p(y|x) - log p(y))) with
// p(y) the chunk's mean; the mean and the standard deviation (numpy's default, / splits) over the chunks. In
// float64, with 0 * log 0 = 0 (the limit; numpy would give NaN for an exact zero probability).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace asg::metrics {

struct InceptionScore {
  double mean = 0;
  double std = 0;
};

// probs: [n, classes], rows summing to 1. asg::Error(Config) when n < splits.
InceptionScore inception_score_of(const torch::Tensor& probs, int64_t splits);

}  // namespace asg::metrics
