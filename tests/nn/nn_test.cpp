// asg_nn's blocks on their own: the attention backends against each other, and the scale-shift-SiLU
// operation (the composite on the CPU; on a GPU the fused CUDA kernel against the composite).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/nn/attention.h"
#include "asg/nn/scale_shift_silu.h"

namespace {

using asg::nn::AttentionBackend;

struct Grads {
  torch::Tensor out, dq, dk, dv;
};

Grads run_attention(AttentionBackend backend, const torch::Tensor& q0, const torch::Tensor& k0, const torch::Tensor& v0,
                    const torch::Tensor& dout) {
  auto q = q0.clone().requires_grad_(true), k = k0.clone().requires_grad_(true), v = v0.clone().requires_grad_(true);
  asg::nn::AttentionOptions options;
  options.backend = backend;
  auto out = asg::nn::attention(q, k, v, options);
  out.backward(dout);
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

TEST(Attention, SdpaAndNaiveAgreeInForwardAndBackward) {
  torch::manual_seed(0);
  // Lq != Lk: cross-attention shapes.
  auto q = torch::randn({2, 3, 40, 16}, torch::kFloat64), k = torch::randn({2, 3, 24, 16}, torch::kFloat64);
  auto v = torch::randn({2, 3, 24, 16}, torch::kFloat64), dout = torch::randn({2, 3, 40, 16}, torch::kFloat64);
  const Grads naive = run_attention(AttentionBackend::Naive, q, k, v, dout);
  for (AttentionBackend backend : {AttentionBackend::Sdpa}) {
    const Grads g = run_attention(backend, q, k, v, dout);
    const auto name = asg::nn::attention_backend_names().name(backend);
    EXPECT_TRUE(torch::allclose(g.out, naive.out, 1e-10, 1e-10)) << name;
    EXPECT_TRUE(torch::allclose(g.dq, naive.dq, 1e-10, 1e-10)) << name;
    EXPECT_TRUE(torch::allclose(g.dk, naive.dk, 1e-10, 1e-10)) << name;
    EXPECT_TRUE(torch::allclose(g.dv, naive.dv, 1e-10, 1e-10)) << name;
  }
}

TEST(Attention, AutoResolvesToSdpaAndTheRemovedChunkedKernelIsRefusedNamingTheValidOnes) {
  EXPECT_EQ(asg::nn::resolve_backend({}), AttentionBackend::Sdpa);
  asg::nn::AttentionOptions naive;
  naive.backend = AttentionBackend::Naive;
  EXPECT_EQ(asg::nn::resolve_backend(naive), AttentionBackend::Naive);
  try {
    asg::nn::parse_attention_backend("chunked");
    ADD_FAILURE() << "\"chunked\" was accepted";
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("auto, naive, sdpa"), std::string::npos) << e.what();
  }
}

TEST(ScaleShiftSilu, IsSiluOfTheScaleShiftedInputWithItsGradients) {
  torch::manual_seed(1);
  auto x = torch::randn({3, 4, 5, 6}, torch::kFloat64).requires_grad_(true);
  auto scale = torch::randn({3, 4}, torch::kFloat64).requires_grad_(true);
  auto shift = torch::randn({3, 4}, torch::kFloat64).requires_grad_(true);
  auto y = asg::nn::scale_shift_silu(x, scale, shift);
  // By hand: z = x (1 + s) + b per (n, c); silu(z) = z sigmoid(z).
  auto z = x.detach() * (1 + scale.detach().view({3, 4, 1, 1})) + shift.detach().view({3, 4, 1, 1});
  EXPECT_TRUE(torch::allclose(y.detach(), z * torch::sigmoid(z), 1e-12, 1e-12));

  // Gradients against central differences of a weighted sum, in float64.
  auto weights = torch::randn_like(y);
  (y * weights).sum().backward();
  auto loss = [&](const torch::Tensor& xv, const torch::Tensor& sv, const torch::Tensor& bv) {
    return (asg::nn::scale_shift_silu(xv, sv, bv) * weights).sum().item<double>();
  };
  const double eps = 1e-6;
  auto numeric = [&](const torch::Tensor& param, int which) {
    auto grad = torch::zeros_like(param);
    auto flat = grad.view(-1);
    for (int64_t i = 0; i < param.numel(); ++i) {
      torch::Tensor args[3] = {x.detach().clone(), scale.detach().clone(), shift.detach().clone()};
      args[which].view(-1)[i] += eps;
      const double up = loss(args[0], args[1], args[2]);
      args[which].view(-1)[i] -= 2 * eps;
      flat[i] = (up - loss(args[0], args[1], args[2])) / (2 * eps);
    }
    return grad;
  };
  EXPECT_TRUE(torch::allclose(x.grad(), numeric(x, 0), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(scale.grad(), numeric(scale, 1), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(shift.grad(), numeric(shift, 2), 1e-6, 1e-6));
}

TEST(ScaleShiftSilu, RefusesScaleThatDoesNotMatchTheChannels) {
  auto x = torch::randn({2, 4, 3, 3});
  EXPECT_ANY_THROW(asg::nn::scale_shift_silu(x, torch::randn({2, 3}), torch::randn({2, 3})));
  EXPECT_ANY_THROW(asg::nn::scale_shift_silu(x, torch::randn({2, 4}), torch::randn({2, 4, 1})));
}

// The fused kernel against the composite on the GPU, in every dtype autocast gives it, with mixed dtypes
// (under bf16 autocast the scale and shift come out of a Linear in bfloat16 and x out of GroupNorm in float32).
TEST(ScaleShiftSilu, FusedCudaKernelMatchesTheCompositeInForwardAndBackward) {
  if (!asg::nn::scale_shift_silu_fused(torch::Device(torch::kCUDA, 0)))
    GTEST_SKIP() << "this build does not compile the CUDA path (ASG_WITH_CUDA): the fused scale-shift-SiLU kernel is not built";
  if (!torch::cuda::is_available())
    GTEST_SKIP() << "no CUDA device: would check the fused scale-shift-SiLU kernel (forward, and the x, scale and shift "
                    "gradients) against the ATen composite in float32, bfloat16 and float16";
  struct Case {
    torch::ScalarType x, ss;
    double tol;
  };
  for (const Case c : {Case{torch::kFloat32, torch::kFloat32, 1e-5}, Case{torch::kFloat32, torch::kBFloat16, 1e-5},
                       Case{torch::kBFloat16, torch::kBFloat16, 2e-2}, Case{torch::kFloat16, torch::kFloat16, 2e-3}}) {
    torch::manual_seed(2);
    const auto dev = torch::TensorOptions().device(torch::kCUDA);
    // 4 x 64 rows of 8 x 33 x 17 elements: rows longer than a block, and not a multiple of 32.
    auto x0 = torch::randn({4, 64, 8, 33, 17}, dev.dtype(c.x)), s0 = torch::randn({4, 64}, dev.dtype(c.ss)) * 0.5;
    auto b0 = torch::randn({4, 64}, dev.dtype(c.ss)), g = torch::randn({4, 64, 8, 33, 17}, dev.dtype(c.x));
    auto run = [&](bool fused) {
      auto x = x0.clone().requires_grad_(true), s = s0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
      auto y = fused ? asg::nn::scale_shift_silu(x, s, b) : asg::nn::scale_shift_silu_reference(x, s, b);
      y.backward(g.to(y.scalar_type()));
      return std::vector<torch::Tensor>{y.detach().to(torch::kFloat64), x.grad().to(torch::kFloat64),
                                        s.grad().to(torch::kFloat64), b.grad().to(torch::kFloat64)};
    };
    const auto fused = run(true), reference = run(false);
    const char* names[] = {"y", "grad x", "grad scale", "grad shift"};
    for (size_t i = 0; i < fused.size(); ++i) {
      // The row reductions sum 4488 terms: relative to the size of the gradient, not elementwise.
      const double scale = std::max(1.0, reference[i].abs().max().item<double>());
      EXPECT_LE((fused[i] - reference[i]).abs().max().item<double>() / scale, c.tol)
          << names[i] << " x " << c10::toString(c.x) << " scale/shift " << c10::toString(c.ss);
    }
  }
}

}  // namespace
