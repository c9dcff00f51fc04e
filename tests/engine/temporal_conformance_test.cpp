// The temporal-module conformance suite: every temporal plugin found in the build (and on
// $ASG_PLUGIN_PATH) is held to the contract in asg/kinds/temporal.h. A new module joins the suite by
// being built; nothing here lists them.
#include <gtest/gtest.h>
#include <torch/torch.h>


#include "asg/kinds/temporal.h"
#include "conformance.h"

namespace {

const asg::PluginCatalog& catalog() { return asg::testing::build_catalog(); }
std::vector<std::string> temporal_modules() { return asg::testing::plugins_of_kind("temporal"); }

// An insertion point like the quickstart's first level, small enough to be quick.
const asg::TemporalContext kPoint{"conformance", 16, 6, 4, 4};

std::shared_ptr<asg::TemporalModule> make(const std::string& name, uint64_t seed = 0) {
  torch::manual_seed(seed);
  const auto& record = catalog().find("temporal", name);
  return catalog().create<asg::TemporalModule>(name, asg::default_params(name, record->factory.params), kPoint);
}

// Moves every parameter away from its initial value, so that zero-initialised gates (which stop
// gradients at init by design) do not hide a parameter that forward() never uses.
void perturb(torch::nn::Module& m, uint64_t seed = 7) {
  torch::manual_seed(seed);
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.add_(torch::randn_like(p) * 0.2);
}

torch::Tensor input(torch::ScalarType dtype = torch::kFloat32, uint64_t seed = 11) {
  torch::manual_seed(seed);
  return torch::randn({2, kPoint.channels, kPoint.frames, kPoint.height, kPoint.width}, torch::TensorOptions().dtype(dtype));
}

class TemporalConformance : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST(TemporalModules, TheBuildHasThePapersModules) {
  auto names = temporal_modules();
  for (const char* expected : {"none", "temporal_conv", "temporal_attention", "sti"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
}

TEST_P(TemporalConformance, KeepsShapeAndDtype) {
  const std::string& name = GetParam();
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    auto m = make(name);
    m->to(dtype);
    auto x = input(dtype);
    auto y = m->forward(x);
    EXPECT_EQ(y.sizes(), x.sizes());
    EXPECT_EQ(y.scalar_type(), dtype);
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  }
}

TEST_P(TemporalConformance, GradientsReachEveryParameter) {
  const std::string& name = GetParam();
  auto m = make(name);
  if (m->parameters().empty()) GTEST_SKIP();  // `none`: nothing to reach
  perturb(*m);
  auto y = m->forward(input());
  (y * torch::randn_like(y)).sum().backward();
  for (const auto& p : m->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " got no gradient";
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key() << " has an all-zero gradient";
  }
}

TEST_P(TemporalConformance, IsDeterministicForAGivenSeed) {
  const std::string& name = GetParam();
  auto a = make(name, 3), b = make(name, 3);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  perturb(*a);
  perturb(*b);
  auto x = input();
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
  EXPECT_TRUE(torch::equal(a->forward(x), a->forward(x)));
}

TEST_P(TemporalConformance, IdentityAtInitIsTrueWhereDeclared) {
  const std::string& name = GetParam();
  auto m = make(name);
  auto x = input();
  bool identity = torch::allclose(m->forward(x), x, 1e-6, 1e-6);
  // The declaration must be honest both ways.
  EXPECT_EQ(identity, m->identity_at_init());
  RecordProperty("identity_at_init", identity ? "true" : "false");
}

TEST_P(TemporalConformance, FrameZeroReachesTheLastFrameExceptForNone) {
  const std::string& name = GetParam();
  auto m = make(name);
  perturb(*m);
  auto x = input().requires_grad_(true);
  // A random weighting of the last frame, not its plain sum: a module ending in a norm whose groups lie
  // within one frame (STI's, per frame) has a constant sum per group, and the sum would see no reach at all.
  auto last = m->forward(x).select(2, kPoint.frames - 1);
  torch::manual_seed(13);
  (last * torch::randn_like(last)).sum().backward();
  const double reach = x.grad().select(2, 0).abs().sum().item<double>();
  if (name == "none")
    EXPECT_EQ(reach, 0.0) << "frames must stay independent";
  else
    EXPECT_GT(reach, 1e-6) << "frame 0 does not influence frame " << kPoint.frames - 1;
}

INSTANTIATE_TEST_SUITE_P(Build, TemporalConformance, ::testing::ValuesIn(temporal_modules()), asg::testing::plugin_test_name);
