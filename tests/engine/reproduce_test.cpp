// The reproduction verdict: identical values on CPU-deterministic reruns, the benchmark's declared tolerance
// otherwise (asg reproduce itself runs end to end in tests/e2e/workflow_test.cpp).
#include "asg/reproduce.h"

#include <gtest/gtest.h>

#include <cmath>

namespace {

std::vector<asg::ResultValue> values(double acc, double fd, double nan_metric) {
  return {{"acc", acc, true}, {"fd", fd, false}, {"undefined", nan_metric, true}};
}

TEST(Reproduction, CpuDeterministicRerunsMustBeIdentical) {
  const auto recorded = values(0.5, 10.0, std::nan(""));
  auto v = asg::judge_reproduction(recorded, values(0.5, 10.0, std::nan("")), /*exact=*/true, nullptr);
  ASSERT_EQ(v.size(), 3u);
  for (const auto& m : v) EXPECT_TRUE(m.pass) << m.key;
  v = asg::judge_reproduction(recorded, values(0.5, 10.0 + 1e-12, std::nan("")), true, nullptr);
  EXPECT_TRUE(v[0].pass);
  EXPECT_FALSE(v[1].pass);  // the last bit counts
  v = asg::judge_reproduction(recorded, values(0.5, 10.0, 0.0), true, nullptr);
  EXPECT_FALSE(v[2].pass);  // NaN agrees only with NaN
  v = asg::judge_reproduction(recorded, {{"acc", 0.5, true}}, true, nullptr);
  EXPECT_FALSE(v[1].pass);  // not recorded by the rerun
  EXPECT_TRUE(std::isnan(v[1].rerun));
}

TEST(Reproduction, OtherwiseTheDefinitionsToleranceDecidesPerMetric) {
  asg::BenchmarkDefinition def;
  def.cuda_tolerance = asg::BenchmarkDefinition::Tolerance{0.0, 0.02};
  def.metric_tolerances["fd"] = {0.5, 0.0};
  const auto recorded = values(0.5, 10.0, 1.0);
  // acc: 2% of 0.5 = 0.01; fd: 0.5 absolute (its own, not the 2%); undefined: 2% of 1.
  auto v = asg::judge_reproduction(recorded, values(0.509, 10.45, 1.019), /*exact=*/false, &def);
  for (const auto& m : v) EXPECT_TRUE(m.pass) << m.key;
  EXPECT_DOUBLE_EQ(v[1].abs_tolerance, 0.5);
  EXPECT_DOUBLE_EQ(v[0].rel_tolerance, 0.02);
  v = asg::judge_reproduction(recorded, values(0.511, 10.55, 1.0), false, &def);
  EXPECT_FALSE(v[0].pass);
  EXPECT_FALSE(v[1].pass);
  EXPECT_TRUE(v[2].pass);
  // A definition without a tolerance, or none at all, demands identical values off the CPU too.
  v = asg::judge_reproduction(recorded, values(0.5000001, 10.0, 1.0), false, nullptr);
  EXPECT_FALSE(v[0].pass);
  asg::BenchmarkDefinition none;
  v = asg::judge_reproduction(recorded, values(0.5, 10.0, 1.0), false, &none);
  for (const auto& m : v) EXPECT_TRUE(m.pass) << m.key;
}

}  // namespace

namespace {

TEST(Reproduction, AnotherLibTorchIsNamedAsDrift) {
  // Runs recorded before the move to the 2.x wheel name Debian's 1.13.
  EXPECT_EQ(asg::libtorch_drift(R"({"torch":"1.13.1","device":"cpu"})", "2.14.1"),
            "LibTorch: the run recorded 1.13.1, this build links 2.14.1 (other kernels: no identical rerun on the CPU)");
  EXPECT_EQ(asg::libtorch_drift(R"({"torch":"2.14.1"})", "2.14.1"), "");
  EXPECT_EQ(asg::libtorch_drift(R"({"device":"cpu"})", "2.14.1"), "");  // not recorded: nothing to compare
  EXPECT_EQ(asg::libtorch_drift("not json", "2.14.1"), "");
}

}  // namespace
