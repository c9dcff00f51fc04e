#include "frechet.h"

#include <fmt/format.h>

#include <cmath>

#include "asg/error.h"

namespace asg::frechet {

const EnumNames<Covariance>& covariance_names() {
  static const EnumNames<Covariance> names{{Covariance::Unbiased, "unbiased"}, {Covariance::Biased, "biased"}};
  return names;
}

Covariance parse_covariance(const std::string& name) { return covariance_names().parse(name, "covariance"); }

GaussianStats gaussian_stats(const torch::Tensor& features, Covariance convention) {
  if (features.dim() != 2) throw internal_error("gaussian_stats: features must be [N, d]");
  auto f = features.to(torch::kCPU).to(torch::kFloat64);
  const int64_t n = f.size(0);
  const int64_t min_n = convention == Covariance::Unbiased ? 2 : 1;
  if (n < min_n)
    throw data_error(fmt::format("Fréchet statistics need at least {} samples for the {} covariance, got {}", min_n,
                                 convention == Covariance::Unbiased ? "unbiased (N-1)" : "biased (N)", n));
  GaussianStats s;
  s.count = n;
  s.mean = f.mean(0);
  auto centred = f - s.mean;
  s.cov = centred.t().matmul(centred) / static_cast<double>(convention == Covariance::Unbiased ? n - 1 : n);
  return s;
}

namespace {
torch::Tensor symmetrise(const torch::Tensor& m) { return (m + m.t()) / 2; }
}  // namespace

double trace_sqrt_product(const torch::Tensor& sigma1, const torch::Tensor& sigma2) {
  auto s1 = symmetrise(sigma1.to(torch::kFloat64));
  auto s2 = symmetrise(sigma2.to(torch::kFloat64));
  auto [evals1, evecs1] = torch::linalg::eigh(s1, "L");
  auto root = evecs1.matmul(torch::diag(evals1.clamp_min(0).sqrt())).matmul(evecs1.t());
  auto m = symmetrise(root.matmul(s2).matmul(root));
  auto evals = torch::linalg::eigvalsh(m, "L");
  return evals.clamp_min(0).sqrt().sum().item<double>();
}

double trace_sqrt_product_eigvals(const torch::Tensor& sigma1, const torch::Tensor& sigma2) {
  auto prod = sigma1.to(torch::kFloat64).matmul(sigma2.to(torch::kFloat64));
  return torch::real(torch::sqrt(torch::linalg::eigvals(prod))).sum().item<double>();
}

double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                        const torch::Tensor& sigma2) {
  if (mu1.sizes() != mu2.sizes() || sigma1.sizes() != sigma2.sizes() || sigma1.size(0) != mu1.size(0))
    throw internal_error("frechet_distance: mismatched dimensions");
  auto m1 = mu1.to(torch::kFloat64), m2 = mu2.to(torch::kFloat64);
  auto s1 = sigma1.to(torch::kFloat64), s2 = sigma2.to(torch::kFloat64);
  double mean_term = (m1 - m2).pow(2).sum().item<double>();
  double trace_term = s1.trace().item<double>() + s2.trace().item<double>() - 2 * trace_sqrt_product(s1, s2);
  return mean_term + trace_term;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) { return frechet_distance(a.mean, a.cov, b.mean, b.cov); }

}  // namespace asg::frechet
