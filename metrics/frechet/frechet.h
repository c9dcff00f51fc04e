// The Fréchet distance between Gaussians fitted to two feature sets: the algebra shared by FVD, FID
// and our weight-free pixel FD. Conventions follow the reference implementations (docs/metrics.md):
//
//   FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^(1/2) )
//
// - Statistics in float64 on the CPU.
// - Covariance normalisation is a parameter and is reported: Unbiased divides by N-1 (pytorch-fid,
//   clean-fid, tfgan, torchmetrics), Biased divides by N (StyleGAN-V / StyleGAN2-ADA).
// - tr((S1 S2)^(1/2)) by the symmetric route: A = S1^(1/2) from eigh with eigenvalues clamped at 0,
//   M = A S2 A symmetrised, tr = sum sqrt(max(eig(M), 0)). Exact for PSD inputs and stable when N < d
//   (rank-deficient covariances), unlike scipy's sqrtm. trace_sqrt_product_eigvals() is the
//   torchmetrics route, kept as a cross-check.
#pragma once

#include <torch/torch.h>

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

// features: [N, d]. asg::Error(Data) if N is too small for the convention (N < 2 for Unbiased).
GaussianStats gaussian_stats(const torch::Tensor& features, Covariance convention);

double trace_sqrt_product(const torch::Tensor& sigma1, const torch::Tensor& sigma2);
double trace_sqrt_product_eigvals(const torch::Tensor& sigma1, const torch::Tensor& sigma2);

double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                        const torch::Tensor& sigma2);
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

}  // namespace asg::frechet
