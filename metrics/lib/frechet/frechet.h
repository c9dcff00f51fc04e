// The Fréchet distance between Gaussians fitted to two feature sets: the algebra shared by FVD, FID
// and our weight-free feature distances. Conventions follow the reference implementations (docs/metrics.md):
//
//   FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^(1/2) )
//
// - Statistics in float64 on the CPU, accumulated as streaming, mergeable moments (FeatureMoments): a
//   metric never holds every feature at once, and the moments of several workers or ranks merge exactly.
// - Covariance normalisation is a parameter and is reported: Unbiased divides by N-1 (pytorch-fid,
//   clean-fid, tfgan, torchmetrics), Biased divides by N (StyleGAN-V / StyleGAN2-ADA).
// - tr((S1 S2)^(1/2)) by a symmetric route: tr = sum sqrt(max(eig(M), 0)) with M = L^T S2 L for the
//   Cholesky factor S1 = L L^T when S1 is positive definite (N > d), else M = A S2 A with A = S1^(1/2) from
//   eigh, eigenvalues clamped at 0. Both M are similar to S1 S2 and symmetric PSD: exact for PSD inputs and
//   stable when N < d (rank-deficient covariances), where scipy's sqrtm is not.
//   trace_sqrt_product_eigvals() is the torchmetrics route, kept as a cross-check.
// - pytorch-fid's eps retry: if the distance is not finite (or LAPACK does not converge), eps * I is added
//   to both covariances and it is computed again; FrechetResult says whether that happened.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "asg/params.h"

namespace asg::frechet {

enum class Covariance { Unbiased, Biased };
const EnumNames<Covariance>& covariance_names();  // "unbiased" (N-1), "biased" (N)
Covariance parse_covariance(const std::string& name);

struct GaussianStats {
  torch::Tensor mean;  // float64 [d]
  torch::Tensor cov;   // float64 [d, d]
  int64_t count = 0;
};

// Streaming mean and scatter (sum of centred outer products) of feature rows, in float64. Batches are
// combined with Chan, Golub and LeVeque's pairwise update, so the result does not depend on how the rows
// were split into batches or workers (up to rounding), and there is no E[x^2] - E[x]^2 cancellation.
class FeatureMoments {
 public:
  FeatureMoments() = default;
  explicit FeatureMoments(int64_t dim);

  // features: [n, d], any floating dtype and device. A NaN or Inf refuses the batch with asg::Error(Data)
  // naming the row as "<what> <first_index + row>" (e.g. "generated clip 17"); nothing is added then.
  void add(const torch::Tensor& features, const std::string& what = "sample", int64_t first_index = 0);
  void merge(const FeatureMoments& other);

  int64_t count() const { return count_; }
  int64_t dim() const { return dim_; }
  // asg::Error(Data) if there are too few rows for the convention (N < 2 for Unbiased, N < 1 for Biased).
  GaussianStats stats(Covariance convention) const;

  // Named float64 tensors, for a statistics cache or for gathering from other ranks.
  std::map<std::string, torch::Tensor> state() const;
  static FeatureMoments from_state(const std::map<std::string, torch::Tensor>& state);

 private:
  int64_t dim_ = -1;  // -1: set by the first batch
  int64_t count_ = 0;
  torch::Tensor mean_;     // [d]
  torch::Tensor scatter_;  // [d, d]: sum over rows of (x - mean)(x - mean)^T
};

// features: [N, d]. The statistics of one batch of rows (FeatureMoments with a single add()).
GaussianStats gaussian_stats(const torch::Tensor& features, Covariance convention);

double trace_sqrt_product(const torch::Tensor& sigma1, const torch::Tensor& sigma2);
double trace_sqrt_product_eigvals(const torch::Tensor& sigma1, const torch::Tensor& sigma2);

struct FrechetResult {
  double value = 0;
  double mean_term = 0;   // ||mu1 - mu2||^2
  double trace_term = 0;  // tr S1 + tr S2 - 2 tr (S1 S2)^(1/2)
  double eps = 0;         // the offset added to both covariances by the retry; 0 when none was needed
};

// eps: pytorch-fid's retry offset (1e-6). asg::Error(Data) if even the retry gives no finite value.
FrechetResult frechet(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                      const torch::Tensor& sigma2, double eps = 1e-6);
FrechetResult frechet(const GaussianStats& a, const GaussianStats& b, double eps = 1e-6);

// The distance between two feature matrices ([N1, d], [N2, d]) held in full, as `asg fd` has them. When a
// side has no more rows than dimensions (its covariance is rank-deficient), tr((S1 S2)^(1/2)) is computed in
// the sample space instead: with centred features C1, C2 and normalisers a, b (N-1 or N), the nonzero
// eigenvalues of S1 S2 are the squared singular values of C1 C2^T / sqrt(ab), so the trace is the sum of
// sqrt(eig(K K^T)) / sqrt(ab) with K = C1 C2^T: two matmuls and one eigvalsh of a min(N1, N2)-square matrix
// instead of a d x d eigendecomposition. Otherwise the moments route above. NaN or Inf rows are refused
// naming "<what_a|what_b> row <i>".
FrechetResult frechet_of_features(const torch::Tensor& a, const torch::Tensor& b, Covariance convention,
                                  const std::string& what_a = "first set", const std::string& what_b = "second set");

// The value alone, computed with the offset `eps` * I added to both covariances from the start (what the
// retry computes; exposed for tests and for users who always offset).
double frechet_distance_offset(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                               const torch::Tensor& sigma2, double eps);

double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                        const torch::Tensor& sigma2);
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

}  // namespace asg::frechet
