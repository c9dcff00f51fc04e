// Test vectors from the metric specification this project follows (its conventions are in docs/metrics.md).
#include "frechet.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "asg/error.h"
#include "asg/files.h"
#include "npy.h"
#include "test_paths.h"

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

TEST(FeatureMoments, StreamedAndMergedStatisticsEqualTheOneShotOnes) {
  torch::manual_seed(2);
  auto x = torch::randn({97, 12}, torch::kFloat64) * 3 + 100;  // a large mean: no E[x^2] - E[x]^2 cancellation
  const auto one_shot = gaussian_stats(x, Covariance::Unbiased);
  FeatureMoments streamed;
  for (int64_t start = 0; start < 97; start += 10) streamed.add(x.slice(0, start, std::min<int64_t>(start + 10, 97)));
  // Two "ranks" with uneven halves, merged.
  FeatureMoments rank0, rank1;
  rank0.add(x.slice(0, 0, 31));
  rank1.add(x.slice(0, 31));
  rank0.merge(rank1);
  for (const FeatureMoments* m : {&streamed, &rank0}) {
    const auto s = m->stats(Covariance::Unbiased);
    EXPECT_EQ(s.count, 97);
    EXPECT_TRUE(torch::allclose(s.mean, one_shot.mean, 1e-12, 1e-12));
    EXPECT_TRUE(torch::allclose(s.cov, one_shot.cov, 1e-10, 1e-10));
  }
  // Through the state a cache or another rank would carry.
  const auto restored = FeatureMoments::from_state(rank0.state()).stats(Covariance::Biased);
  EXPECT_TRUE(torch::allclose(restored.cov, one_shot.cov * (96.0 / 97.0), 1e-10, 1e-10));
  // Merging nothing changes nothing; an empty state restores an empty accumulator.
  rank0.merge(FeatureMoments());
  EXPECT_EQ(rank0.count(), 97);
  EXPECT_EQ(FeatureMoments::from_state(FeatureMoments().state()).count(), 0);
}

TEST(FeatureMoments, NonFiniteFeaturesAreRefusedNamingTheSample) {
  FeatureMoments m;
  m.add(torch::ones({4, 3}), "generated clip", 0);
  auto bad = torch::ones({5, 3});
  bad[3][1] = std::numeric_limits<double>::quiet_NaN();
  try {
    m.add(bad, "generated clip", 4);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("generated clip 7"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  EXPECT_EQ(m.count(), 4);  // the bad batch added nothing
  bad[3][1] = std::numeric_limits<double>::infinity();
  EXPECT_THROW(m.add(bad), asg::Error);
}

TEST(Frechet, TheRetryOffsetsBothCovariancesAsPytorchFidDoes) {
  // With eps * I on both sides, a 1-D N(0, a) vs N(0, b) distance is (sqrt(a + eps) - sqrt(b + eps))^2.
  const double eps = 0.5;
  EXPECT_NEAR(frechet_distance_offset(v({0}), m({{1}}), v({0}), m({{4}}), eps), std::pow(std::sqrt(1.5) - std::sqrt(4.5), 2), 1e-12);
  // A well-posed case needs no retry, and says so.
  const auto r = frechet(v({0, 0}), m({{2, 1}, {1, 2}}), v({1, 2}), m({{1, 0}, {0, 3}}));
  EXPECT_EQ(r.eps, 0);
  EXPECT_NEAR(r.mean_term, 5.0, 1e-12);
  EXPECT_NEAR(r.trace_term, 0.5166852264521173, 1e-12);
  // Non-finite statistics cannot be rescued by the offset: an error, never a number.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(frechet(v({0, 0}), m({{nan, 0}, {0, 1}}), v({0, 0}), m({{1, 0}, {0, 1}})), asg::Error);
}

// scripts/fixtures/frechet_reference.py computes each case with numpy.cov + scipy.linalg.sqrtm exactly as
// pytorch-fid does, and saves the features with numpy.save (float32 and float64, one in Fortran order).
TEST(Frechet, AgreesWithScipySqrtmOnNpyFilesToOnePartInAMillion) {
  const auto dir = asg::testing::make_temp_dir("frechet-scipy");
  ASSERT_TRUE(asg::testing::write_fixture("frechet_reference.py", dir))
      << "scripts/fixtures/frechet_reference.py failed (numpy and scipy: the reference environment, scripts/setup.sh)";
  const auto reference = nlohmann::json::parse(asg::read_text_file(dir / "reference.json"));
  ASSERT_GE(reference["cases"].size(), 5u);
  for (const auto& c : reference["cases"]) {
    const auto a = asg::npy::read_matrix(dir / c["a"].get<std::string>());
    const auto b = asg::npy::read_matrix(dir / c["b"].get<std::string>());
    for (const auto& [name, convention] : {std::pair{"unbiased", Covariance::Unbiased}, std::pair{"biased", Covariance::Biased}}) {
      const double expected = c[name].get<double>();
      // The moments route (streaming metrics) and the full-matrix route (asg fd: sample space when N <= d).
      const double moments = frechet_distance(gaussian_stats(a, convention), gaussian_stats(b, convention));
      const double full = frechet_of_features(a, b, convention).value;
      for (const double got : {moments, full})
        EXPECT_LE(std::abs(got - expected) / std::abs(expected), 1e-6)
            << c["a"] << " " << name << ": N = " << a.size(0) << ", " << b.size(0) << ", d = " << a.size(1) << ": " << got
            << " vs scipy " << expected;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(Npy, RoundTripsAndRefusesWhatIsNotAFeatureMatrixNamingTheFile) {
  const auto dir = asg::testing::make_temp_dir("npy");
  torch::manual_seed(3);
  const auto x = torch::randn({7, 5}, torch::kFloat32);
  asg::npy::write_matrix(dir / "x.npy", x);
  EXPECT_TRUE(torch::equal(asg::npy::read_matrix(dir / "x.npy"), x.to(torch::kFloat64)));
  // numpy reads what we write (the header, its alignment and the data).
  const std::string check = asg::testing::python() + " -c \"import numpy as n, sys; a = n.load(sys.argv[1]); "
                            "sys.exit(0 if a.shape == (7, 5) and a.dtype == n.float32 else 1)\" " + (dir / "x.npy").string();
  EXPECT_EQ(std::system(check.c_str()), 0);

  auto refused = [&](const std::string& name, const std::string& bytes, const std::string& says) {
    asg::write_text_file_atomic(dir / name, bytes);
    try {
      asg::npy::read_matrix(dir / name);
      ADD_FAILURE() << name << " was accepted";
    } catch (const asg::Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.rfind((dir / name).string() + ": ", 0), 0u) << what;
      EXPECT_NE(what.find(says), std::string::npos) << what;
    }
  };
  auto npy = [](const std::string& header, size_t data_bytes) {
    std::string h = header;
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string b("\x93NUMPY\x01\x00", 8);
    b += static_cast<char>(h.size());
    b += '\0';
    return b + h + std::string(data_bytes, '\0');
  };
  refused("text.npy", "N,d\n1,2\n", "not a .npy file");
  refused("vector.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24), "not 2-D");
  refused("ints.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 48), "'<i8'");
  refused("big_endian.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24), "little-endian");
  refused("short.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 40), "needs 48 bytes");
  EXPECT_THROW(asg::npy::read_matrix(dir / "missing.npy"), asg::Error);
  std::filesystem::remove_all(dir);
}
