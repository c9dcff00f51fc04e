#include "frechet.h"

#include <fmt/format.h>

#include <cmath>
#include <optional>

#include "asg/error.h"

namespace asg::frechet {

const EnumNames<Covariance>& covariance_names() {
  static const EnumNames<Covariance> names{{Covariance::Unbiased, "unbiased"}, {Covariance::Biased, "biased"}};
  return names;
}

Covariance parse_covariance(const std::string& name) { return covariance_names().parse(name, "covariance"); }

// ---- streaming moments --------------------------------------------------------------------------------

namespace {

// asg::Error(Data) naming the first row of `f` ([n, d], float64) with a NaN or Inf: "<what> <first_index + row>".
void refuse_non_finite(const torch::Tensor& f, const std::string& what, int64_t first_index) {
  auto finite_rows = torch::isfinite(f).all(1);
  if (finite_rows.all().item<bool>()) return;
  const int64_t row = (~finite_rows).nonzero()[0][0].item<int64_t>();
  const bool has_nan = torch::isnan(f[row]).any().item<bool>();
  throw data_error(fmt::format("{} {}: its features contain {} (the extractor or the sample is broken); no distance is "
                               "computed from non-finite features",
                               what, first_index + row, has_nan ? "NaN" : "Inf"));
}

// asg::Error(Data) when n rows are too few for the convention's covariance.
void require_rows(int64_t n, Covariance convention) {
  const int64_t min_n = convention == Covariance::Unbiased ? 2 : 1;
  if (n < min_n)
    throw data_error(fmt::format("Fréchet statistics need at least {} samples for the {} covariance, got {}", min_n,
                                 convention == Covariance::Unbiased ? "unbiased (N-1)" : "biased (N)", n));
}

double normaliser(int64_t n, Covariance convention) {
  return static_cast<double>(convention == Covariance::Unbiased ? n - 1 : n);
}

}  // namespace

FeatureMoments::FeatureMoments(int64_t dim) : dim_(dim) {
  mean_ = torch::zeros({dim}, torch::kFloat64);
  scatter_ = torch::zeros({dim, dim}, torch::kFloat64);
}

void FeatureMoments::add(const torch::Tensor& features, const std::string& what, int64_t first_index) {
  if (features.dim() != 2) throw internal_error(fmt::format("FeatureMoments::add: features must be [n, d], got {}", c10::str(features.sizes())));
  if (dim_ >= 0 && features.size(1) != dim_)
    throw internal_error(fmt::format("FeatureMoments::add: {} features of dimension {} after {}", what, features.size(1), dim_));
  if (features.size(0) == 0) return;
  auto f = features.to(torch::kCPU).to(torch::kFloat64);
  refuse_non_finite(f, what, first_index);
  FeatureMoments batch;
  batch.dim_ = f.size(1);
  batch.count_ = f.size(0);
  batch.mean_ = f.mean(0);
  auto centred = f - batch.mean_;
  batch.scatter_ = centred.t().matmul(centred);
  merge(batch);
}

void FeatureMoments::merge(const FeatureMoments& other) {
  if (other.count_ == 0) return;
  if (count_ == 0) {
    if (dim_ >= 0 && other.dim_ != dim_)
      throw internal_error(fmt::format("FeatureMoments::merge: dimension {} into {}", other.dim_, dim_));
    dim_ = other.dim_;
    count_ = other.count_;
    mean_ = other.mean_.clone();
    scatter_ = other.scatter_.clone();
    return;
  }
  if (other.dim_ != dim_) throw internal_error(fmt::format("FeatureMoments::merge: dimension {} into {}", other.dim_, dim_));
  const double na = static_cast<double>(count_), nb = static_cast<double>(other.count_), n = na + nb;
  auto delta = other.mean_ - mean_;
  mean_ = mean_ + delta * (nb / n);
  scatter_ = scatter_ + other.scatter_ + torch::outer(delta, delta) * (na * nb / n);
  count_ += other.count_;
}

GaussianStats FeatureMoments::stats(Covariance convention) const {
  require_rows(count_, convention);
  GaussianStats s;
  s.count = count_;
  s.mean = mean_;
  s.cov = scatter_ / normaliser(count_, convention);
  return s;
}

std::map<std::string, torch::Tensor> FeatureMoments::state() const {
  if (count_ == 0) return {{"count", torch::zeros({}, torch::kFloat64)}};
  return {{"count", torch::full({}, static_cast<double>(count_), torch::kFloat64)}, {"mean", mean_}, {"scatter", scatter_}};
}

FeatureMoments FeatureMoments::from_state(const std::map<std::string, torch::Tensor>& state) {
  auto get = [&](const char* key) -> const torch::Tensor& {
    auto it = state.find(key);
    if (it == state.end()) throw data_error(fmt::format("feature statistics without '{}'", key));
    return it->second;
  };
  FeatureMoments m;
  const double count = get("count").item<double>();
  if (count < 0 || count != std::floor(count)) throw data_error(fmt::format("feature statistics with a count of {}", count));
  if (count == 0) return m;
  const torch::Tensor& mean = get("mean");
  const torch::Tensor& scatter = get("scatter");
  if (mean.dim() != 1 || scatter.dim() != 2 || scatter.size(0) != mean.size(0) || scatter.size(1) != mean.size(0))
    throw data_error(fmt::format("feature statistics with a mean of {} and a scatter of {}", c10::str(mean.sizes()),
                                 c10::str(scatter.sizes())));
  m.count_ = static_cast<int64_t>(count);
  m.dim_ = mean.size(0);
  m.mean_ = mean.to(torch::kCPU).to(torch::kFloat64).clone();
  m.scatter_ = scatter.to(torch::kCPU).to(torch::kFloat64).clone();
  return m;
}

GaussianStats gaussian_stats(const torch::Tensor& features, Covariance convention) {
  if (features.dim() != 2) throw internal_error("gaussian_stats: features must be [N, d]");
  FeatureMoments m;
  m.add(features);
  return m.stats(convention);
}

// ---- the distance -------------------------------------------------------------------------------------

namespace {
torch::Tensor symmetrise(const torch::Tensor& m) { return (m + m.t()) / 2; }

void check_shapes(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2, const torch::Tensor& sigma2) {
  if (mu1.dim() != 1 || mu1.sizes() != mu2.sizes() || sigma1.sizes() != sigma2.sizes() || sigma1.dim() != 2 ||
      sigma1.size(0) != mu1.size(0) || sigma1.size(1) != mu1.size(0))
    throw internal_error(fmt::format("frechet_distance: mismatched dimensions (means {} and {}, covariances {} and {})",
                                     c10::str(mu1.sizes()), c10::str(mu2.sizes()), c10::str(sigma1.sizes()),
                                     c10::str(sigma2.sizes())));
}

// The distance's two terms with `eps` * I added to both covariances; nullopt if LAPACK fails.
std::optional<FrechetResult> terms(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                                   const torch::Tensor& sigma2, double eps) {
  auto m1 = mu1.to(torch::kCPU).to(torch::kFloat64), m2 = mu2.to(torch::kCPU).to(torch::kFloat64);
  auto s1 = sigma1.to(torch::kCPU).to(torch::kFloat64), s2 = sigma2.to(torch::kCPU).to(torch::kFloat64);
  if (eps != 0) {
    auto offset = torch::eye(s1.size(0), torch::kFloat64) * eps;
    s1 = s1 + offset;
    s2 = s2 + offset;
  }
  FrechetResult r;
  r.eps = eps;
  r.mean_term = (m1 - m2).pow(2).sum().item<double>();
  try {
    r.trace_term = s1.trace().item<double>() + s2.trace().item<double>() - 2 * trace_sqrt_product(s1, s2);
  } catch (const c10::Error&) {  // eigh did not converge
    return std::nullopt;
  }
  r.value = r.mean_term + r.trace_term;
  return r;
}
}  // namespace

double trace_sqrt_product(const torch::Tensor& sigma1, const torch::Tensor& sigma2) {
  auto s1 = symmetrise(sigma1.to(torch::kFloat64));
  auto s2 = symmetrise(sigma2.to(torch::kFloat64));
  // S1 positive definite (N > d, the usual FID/FVD case): S1 = L L^T, and S1 S2 is similar to L^T S2 L,
  // so its eigenvalues are those of that symmetric PSD matrix. A Cholesky factor costs a tenth of an
  // eigendecomposition.
  auto [factor, info] = torch::linalg_cholesky_ex(s1);
  torch::Tensor m;
  if (info.item<int64_t>() == 0) {
    m = factor.t().matmul(s2.matmul(factor));
  } else {
    // Rank-deficient S1 (N <= d): A = S1^(1/2) from eigh with eigenvalues clamped at 0, then A S2 A.
    auto [evals1, evecs1] = torch::linalg_eigh(s1, "L");
    auto root = (evecs1 * evals1.clamp_min(0).sqrt().unsqueeze(0)).matmul(evecs1.t());
    m = root.matmul(s2).matmul(root);
  }
  auto evals = torch::linalg_eigvalsh(symmetrise(m), "L");
  return evals.clamp_min(0).sqrt().sum().item<double>();
}

double trace_sqrt_product_eigvals(const torch::Tensor& sigma1, const torch::Tensor& sigma2) {
  auto prod = sigma1.to(torch::kFloat64).matmul(sigma2.to(torch::kFloat64));
  return torch::real(torch::sqrt(torch::linalg_eigvals(prod))).sum().item<double>();
}

FrechetResult frechet(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                      const torch::Tensor& sigma2, double eps) {
  check_shapes(mu1, sigma1, mu2, sigma2);
  if (auto r = terms(mu1, sigma1, mu2, sigma2, 0); r && std::isfinite(r->value)) return *r;
  if (auto r = terms(mu1, sigma1, mu2, sigma2, eps); r && std::isfinite(r->value)) return *r;
  throw data_error(fmt::format("the Fréchet distance is not finite, even with {} added to the covariances' diagonals "
                               "(are the statistics themselves finite?)",
                               eps));
}

FrechetResult frechet(const GaussianStats& a, const GaussianStats& b, double eps) {
  return frechet(a.mean, a.cov, b.mean, b.cov, eps);
}

FrechetResult frechet_of_features(const torch::Tensor& a, const torch::Tensor& b, Covariance convention,
                                  const std::string& what_a, const std::string& what_b) {
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(1))
    throw internal_error(fmt::format("frechet_of_features: features {} and {}", c10::str(a.sizes()), c10::str(b.sizes())));
  const int64_t na = a.size(0), nb = b.size(0), d = a.size(1);
  if (std::min(na, nb) > d) {  // the moments route, as a streaming metric has it
    FeatureMoments ma, mb;
    ma.add(a, what_a + " row");
    mb.add(b, what_b + " row");
    return frechet(ma.stats(convention), mb.stats(convention));
  }
  // Sample-space route for rank-deficient covariances: no d x d matrix is formed.
  const auto fa = a.to(torch::kCPU).to(torch::kFloat64), fb = b.to(torch::kCPU).to(torch::kFloat64);
  refuse_non_finite(fa, what_a + " row", 0);
  refuse_non_finite(fb, what_b + " row", 0);
  require_rows(na, convention);
  require_rows(nb, convention);
  const auto mean_a = fa.mean(0), mean_b = fb.mean(0);
  const auto ca = fa - mean_a, cb = fb - mean_b;
  const auto k = ca.matmul(cb.t());  // [N1, N2]
  const auto gram = na <= nb ? k.matmul(k.t()) : k.t().matmul(k);
  const double trace_sqrt = torch::linalg_eigvalsh(symmetrise(gram), "L").clamp_min(0).sqrt().sum().item<double>() /
                            std::sqrt(normaliser(na, convention) * normaliser(nb, convention));
  FrechetResult r;
  r.mean_term = (mean_a - mean_b).pow(2).sum().item<double>();
  r.trace_term = ca.pow(2).sum().item<double>() / normaliser(na, convention) +
                 cb.pow(2).sum().item<double>() / normaliser(nb, convention) - 2 * trace_sqrt;
  r.value = r.mean_term + r.trace_term;
  if (std::isfinite(r.value)) return r;
  FeatureMoments ma, mb;  // the moments route, with its eps retry
  ma.add(fa);
  mb.add(fb);
  return frechet(ma.stats(convention), mb.stats(convention));
}

double frechet_distance_offset(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                               const torch::Tensor& sigma2, double eps) {
  check_shapes(mu1, sigma1, mu2, sigma2);
  auto r = terms(mu1, sigma1, mu2, sigma2, eps);
  if (!r) throw data_error("the Fréchet distance could not be computed: eigh did not converge");
  return r->value;
}

double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                        const torch::Tensor& sigma2) {
  return frechet(mu1, sigma1, mu2, sigma2).value;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) { return frechet(a, b).value; }

}  // namespace asg::frechet
