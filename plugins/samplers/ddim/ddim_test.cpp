#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "asg/kinds/sampler.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

namespace {

// A denoiser that knows the clean clip: it returns the exact network output for x0_ (in v form).
struct Oracle : asg::Denoiser {
  Oracle(torch::Tensor x0, asg::Prediction p) : x0_(std::move(x0)), schedule_("cosine", 1000, p) {}
  torch::Tensor predict(const torch::Tensor& x_t, int64_t t, double scale) override {
    scales.push_back(scale);
    timesteps.push_back(t);
    auto tt = torch::full({x_t.size(0)}, t, torch::kLong);
    auto a = schedule_.abar(tt, x_t);
    auto eps = (x_t - a.sqrt() * x0_) / (1 - a).sqrt();
    return schedule_.target(x0_, eps, tt);
  }
  const asg::NoiseSchedule& schedule() const override { return schedule_; }
  torch::Tensor x0_;
  asg::NoiseSchedule schedule_;
  std::vector<double> scales;
  std::vector<int64_t> timesteps;
};

}  // namespace

TEST(Ddim, RecoversTheCleanClipFromAPerfectDenoiser) {
  for (auto pred : {asg::Prediction::V, asg::Prediction::Epsilon, asg::Prediction::X0}) {
    auto x0 = torch::rand({2, 4, 3, 4, 4}) * 1.8 - 0.9;
    Oracle oracle(x0, pred);
    auto sampler = make_under_test<asg::Sampler>("ddim", {{"steps", int64_t{10}}, {"guidance_scale", 2.5}});
    int64_t calls = 0;
    auto out = sampler->sample(oracle, torch::randn(x0.sizes()), at::detail::createCPUGenerator(1),
                               [&](int64_t, int64_t) { ++calls; });
    EXPECT_LT((out - x0).abs().max().item<double>(), 1e-3);
    EXPECT_EQ(calls, 10);
    EXPECT_EQ(oracle.timesteps.front(), 999);  // linspace spacing starts at T-1 ...
    EXPECT_EQ(oracle.timesteps.back(), 0);     // ... and ends at 0
    for (double s : oracle.scales) EXPECT_EQ(s, 2.5);
  }
}

TEST(Ddim, EtaZeroIsDeterministicEtaOneUsesTheGenerator) {
  struct Zero : asg::Denoiser {
    asg::NoiseSchedule s{"cosine", 1000, asg::Prediction::V};
    torch::Tensor predict(const torch::Tensor& x, int64_t, double) override { return torch::zeros_like(x); }
    const asg::NoiseSchedule& schedule() const override { return s; }
  } model;
  auto noise = torch::randn({1, 4, 2, 4, 4});
  auto ddim = make_under_test<asg::Sampler>("ddim", {{"steps", int64_t{5}}});
  auto a = ddim->sample(model, noise, at::detail::createCPUGenerator(1), nullptr);
  auto b = ddim->sample(model, noise, at::detail::createCPUGenerator(2), nullptr);
  EXPECT_TRUE(torch::equal(a, b));
  auto ddpm = make_under_test<asg::Sampler>("ddim", {{"steps", int64_t{5}}, {"eta", 1.0}});
  auto c = ddpm->sample(model, noise, at::detail::createCPUGenerator(1), nullptr);
  auto d = ddpm->sample(model, noise, at::detail::createCPUGenerator(2), nullptr);
  auto e = ddpm->sample(model, noise, at::detail::createCPUGenerator(1), nullptr);
  EXPECT_FALSE(torch::equal(c, d));
  EXPECT_TRUE(torch::equal(c, e));
}
