#include "inception_score.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/kinds/metric.h"
#include "extractor_fixtures.h"
#include "metric_driver.h"
#include "plugin_under_test.h"
#include "test_clips.h"

using asg::metrics::inception_score_of;
using asg::testing::make_under_test;

namespace {

// The formula written out with loops: chunk i = rows [i*n/splits, (i+1)*n/splits), exp of the mean KL to the
// chunk's marginal, mean and population std over chunks (StyleGAN-V's inception_score.py).
std::pair<double, double> naive_inception_score(const torch::Tensor& probs, int64_t splits) {
  const auto p = probs.to(torch::kFloat64).contiguous();
  const int64_t n = p.size(0), k = p.size(1);
  const double* a = p.data_ptr<double>();
  std::vector<double> scores;
  for (int64_t s = 0; s < splits; ++s) {
    const int64_t begin = s * n / splits, end = (s + 1) * n / splits;
    std::vector<double> marginal(k, 0.0);
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c = 0; c < k; ++c) marginal[c] += a[r * k + c] / static_cast<double>(end - begin);
    double kl = 0;
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c = 0; c < k; ++c)
        if (a[r * k + c] > 0) kl += a[r * k + c] * (std::log(a[r * k + c]) - std::log(marginal[c]));
    scores.push_back(std::exp(kl / static_cast<double>(end - begin)));
  }
  double mean = 0, var = 0;
  for (double x : scores) mean += x / splits;
  for (double x : scores) var += (x - mean) * (x - mean) / splits;
  return {mean, std::sqrt(var)};
}

torch::Tensor one_hot_cycle(int64_t rows, int64_t classes) {
  return torch::one_hot(torch::arange(rows) % classes, classes).to(torch::kFloat64);
}

}  // namespace

TEST(InceptionScore, TheNotesTestVectors) {
  // Every p(y|x) = 1/K: no information, IS = 1.
  const auto uniform = inception_score_of(torch::full({40, 7}, 1.0 / 7, torch::kFloat64), 10);
  EXPECT_NEAR(uniform.mean, 1.0, 1e-12);
  EXPECT_NEAR(uniform.std, 0.0, 1e-12);
  // Confident and spread evenly over K classes (each chunk of 4 holds each class once): IS = K, exactly.
  const auto spread = inception_score_of(one_hot_cycle(40, 4), 10);
  EXPECT_NEAR(spread.mean, 4.0, 1e-12);
  EXPECT_NEAR(spread.std, 0.0, 1e-12);
  // Confident but all one class: IS = 1.
  EXPECT_NEAR(inception_score_of(torch::one_hot(torch::zeros({20}, torch::kLong), 5).to(torch::kFloat64), 2).mean, 1.0, 1e-12);
}

TEST(InceptionScore, MatchesTheFormulaWithItsUnevenChunks) {
  torch::manual_seed(3);
  for (auto [n, splits] : {std::pair<int64_t, int64_t>{10, 3}, {37, 10}, {64, 1}}) {
    const auto probs = torch::softmax(torch::randn({n, 11}, torch::kFloat64) * 3, 1);
    const auto is = inception_score_of(probs, splits);
    const auto [mean, std] = naive_inception_score(probs, splits);
    EXPECT_NEAR(is.mean, mean, 1e-12 * mean) << n << " rows, " << splits << " splits";
    EXPECT_NEAR(is.std, std, 1e-12) << n << " rows, " << splits << " splits";
  }
  // The chunks follow the order: the same rows sorted by class give other chunks, and another score.
  const auto cycled = one_hot_cycle(40, 4);
  const auto by_class = cycled.index_select(
      0, torch::cat({torch::arange(0, 40, 4), torch::arange(1, 40, 4), torch::arange(2, 40, 4), torch::arange(3, 40, 4)}));
  // Ten per class in chunks of four: eight chunks hold one class (IS 1), two hold two classes half and half (IS 2).
  EXPECT_NEAR(inception_score_of(by_class, 10).mean, 1.2, 1e-12);
}

TEST(InceptionScore, FewerFramesThanSplitsAreRefusedWithBothNumbers) {
  try {
    inception_score_of(torch::full({6, 3}, 1.0 / 3, torch::kFloat64), 10);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(std::string(e.what()), "inception_score: 6 generated frames cannot be cut into 10 splits (valid: at least as many "
                                     "frames as splits; lower `splits` or generate more)");
  }
}

TEST(InceptionScore, ThePluginScoresFramesInGenerationOrderAcrossRanks) {
  const auto file = asg::testing::extractor_fixture("inception");
  const std::map<std::string, asg::ParamValue> params = {
      {"model", file.string()}, {"sha256", asg::sha256_file(file)}, {"splits", int64_t{4}}};
  torch::manual_seed(0);
  const auto clips = torch::rand({6, 4, 4, 16, 16});
  auto whole = make_under_test<asg::Metric>("inception_score", params, asg::testing::clip_context(4));
  const auto one = asg::testing::metric_results(*whole, clips, {});
  ASSERT_EQ(one.count("inception_score"), 1u);
  EXPECT_GE(one.at("inception_score"), 1.0);
  EXPECT_LE(one.at("inception_score"), 1008.0);
  // Two ranks, the second merged into the first in the wrong order: the same chunks, the same number.
  auto a = make_under_test<asg::Metric>("inception_score", params, asg::testing::clip_context(4));
  auto b = make_under_test<asg::Metric>("inception_score", params, asg::testing::clip_context(4));
  a->update(clips.slice(0, 4), {}, 4);
  b->update(clips.slice(0, 0, 4), {}, 0);
  a->merge(b->state());
  std::map<std::string, double> merged;
  for (const auto& v : a->result()) merged[v.key] = v.value;
  // (The extractor's float32 convolutions round differently for other batch compositions: equal to ~1e-12.)
  EXPECT_NEAR(merged.at("inception_score"), one.at("inception_score"), 1e-9);
  EXPECT_NEAR(merged.at("inception_score.std"), one.at("inception_score.std"), 1e-9);
}

TEST(InceptionScore, AFileThatDoesNotGiveProbabilitiesIsRefusedNamingIt) {
  const auto nan = asg::testing::extractor_fixture("inception", "nan");
  auto m = make_under_test<asg::Metric>("inception_score", {{"model", nan.string()}, {"sha256", asg::sha256_file(nan)}},
                                        asg::testing::clip_context(4));
  try {
    m->update(torch::rand({2, 4, 4, 16, 16}), {}, 3);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(nan.string() + ": row 0 (generated clip 3, frame 0) is not a probability vector", 0), 0u)
        << e.what();
  }
}
