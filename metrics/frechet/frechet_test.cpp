// Test vectors from the metric specification this project follows (its conventions are in docs/metrics.md).
#include "frechet.h"

#include <gtest/gtest.h>

#include <cmath>

#include "asg/error.h"

using namespace asg::frechet;

namespace {
torch::Tensor m(std::vector<std::vector<double>> rows) {
  std::vector<torch::Tensor> r;
  for (auto& row : rows) r.push_back(torch::tensor(row, torch::kFloat64));
  return torch::stack(r);
}
torch::Tensor v(std::vector<double> x) { return torch::tensor(x, torch::kFloat64); }
}  // namespace

TEST(Frechet, UnitCovariancesAndShiftedMeans) {
  auto eye = torch::eye(2048, torch::kFloat64);
  EXPECT_NEAR(frechet_distance(torch::zeros({2048}, torch::kFloat64), eye, torch::ones({2048}, torch::kFloat64), eye), 2048, 1e-6);
}

TEST(Frechet, OneDimensional) { EXPECT_NEAR(frechet_distance(v({0}), m({{1}}), v({1}), m({{4}})), 2.0, 1e-12); }

TEST(Frechet, Diagonal) {
  EXPECT_NEAR(frechet_distance(v({0, 0, 0}), torch::diag(v({1, 4, 9})), v({0, 0, 0}), torch::diag(v({4, 4, 1}))), 5.0, 1e-12);
}

TEST(Frechet, NonCommutingCovariances) {
  auto s1 = m({{2, 1}, {1, 2}}), s2 = m({{1, 0}, {0, 3}});
  EXPECT_NEAR(frechet_distance(v({0, 0}), s1, v({0, 0}), s2), 0.5166852264521173, 1e-12);
  EXPECT_NEAR(frechet_distance(v({0, 0}), s1, v({1, 2}), s2), 5.516685226452117, 1e-12);
  auto s3 = m({{4, 2}, {2, 3}}), s4 = m({{2, -1}, {-1, 2}});
  EXPECT_NEAR(frechet_distance(v({0, 0}), s3, v({0, 0}), s4), 2.1010205144, 1e-9);
}

TEST(Frechet, SymmetricRouteAgreesWithEigenvalueRoute) {
  torch::manual_seed(0);
  auto a = torch::randn({50, 6}, torch::kFloat64), b = torch::randn({50, 6}, torch::kFloat64) * 2 + 1;
  auto sa = gaussian_stats(a, Covariance::Unbiased), sb = gaussian_stats(b, Covariance::Unbiased);
  EXPECT_NEAR(trace_sqrt_product(sa.cov, sb.cov), trace_sqrt_product_eigvals(sa.cov, sb.cov), 1e-9);
  EXPECT_NEAR(frechet_distance(sa, sb), frechet_distance(sb, sa), 1e-9);  // symmetric
  EXPECT_NEAR(frechet_distance(sa, sa), 0.0, 1e-9);
}

TEST(Frechet, CovarianceConventionsDiffer) {
  // X = {(0,0),(2,0),(0,2),(2,2)}, Y = 2X: N-1 covariance gives 14/3, N covariance gives 4.
  auto x = m({{0, 0}, {2, 0}, {0, 2}, {2, 2}});
  auto y = x * 2;
  EXPECT_NEAR(frechet_distance(gaussian_stats(x, Covariance::Unbiased), gaussian_stats(y, Covariance::Unbiased)), 14.0 / 3, 1e-12);
  EXPECT_NEAR(frechet_distance(gaussian_stats(x, Covariance::Biased), gaussian_stats(y, Covariance::Biased)), 4.0, 1e-12);
}

TEST(Frechet, SingularCovariancesGiveTheMeanTermWithoutNaN) {
  auto a = torch::ones({5, 3}, torch::kFloat64), b = torch::ones({5, 3}, torch::kFloat64) * 3;
  double fd = frechet_distance(gaussian_stats(a, Covariance::Unbiased), gaussian_stats(b, Covariance::Unbiased));
  EXPECT_FALSE(std::isnan(fd));
  EXPECT_NEAR(fd, 12.0, 1e-12);
}

TEST(Frechet, RankDeficientWhenFewerSamplesThanDimensions) {
  torch::manual_seed(1);
  auto a = torch::randn({10, 40}, torch::kFloat64), b = torch::randn({10, 40}, torch::kFloat64);
  double fd = frechet_distance(gaussian_stats(a, Covariance::Unbiased), gaussian_stats(b, Covariance::Unbiased));
  EXPECT_TRUE(std::isfinite(fd));
  EXPECT_GT(fd, 0);
}

TEST(Frechet, TooFewSamplesIsAnError) {
  EXPECT_THROW(gaussian_stats(torch::ones({1, 3}), Covariance::Unbiased), asg::Error);
  EXPECT_NO_THROW(gaussian_stats(torch::ones({1, 3}), Covariance::Biased));
}
