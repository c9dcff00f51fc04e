// FlatParameters / FlatAdamW against LibTorch's own torch::optim::AdamW and clip_grad_norm_ on the same
// model and data: the flat path must be the same arithmetic, not an approximation of it.
#include "asg/flat_parameters.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"

namespace {

// A little of everything a backbone has: conv, norm, linear, embedding, odd sizes (vector tails).
struct NetImpl : torch::nn::Module {
  NetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 6, 3).padding(1)));
    norm = register_module("norm", torch::nn::GroupNorm(3, 6));
    fc = register_module("fc", torch::nn::Linear(6 * 5 * 5, 37));
    embedding = register_module("embedding", torch::nn::Embedding(11, 37));
    head = register_module("head", torch::nn::Linear(37, 1));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ids) {
    auto h = torch::silu(norm->forward(conv->forward(x))).flatten(1);
    return head->forward(torch::tanh(fc->forward(h) + embedding->forward(ids).sum(1)));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear fc{nullptr}, head{nullptr};
  torch::nn::Embedding embedding{nullptr};
};
TORCH_MODULE(Net);

Net make_net() {
  torch::manual_seed(3);
  return Net();
}

TEST(FlatParameters, ParametersBecomeViewsOfOneBufferAndKeepTheirValues) {
  Net net = make_net();
  Net reference = make_net();
  auto params = net->parameters();
  asg::FlatParameters flat(params);
  int64_t total = 0;
  for (const auto& p : reference->parameters()) total += p.numel();
  EXPECT_EQ(flat.numel(), total);
  auto ref = reference->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i], ref[i])) << "parameter " << i;
    EXPECT_EQ(params[i].storage().data(), flat.data().storage().data()) << "parameter " << i << " is not in the buffer";
    EXPECT_EQ(params[i].grad().storage().data(), flat.grad().storage().data());
  }
  // A write to the buffer is a write to the module's weights.
  { torch::NoGradGuard g; flat.data().fill_(0.25); }
  EXPECT_TRUE(torch::all(net->conv->weight == 0.25).item<bool>());
  EXPECT_TRUE(torch::all(net->head->bias == 0.25).item<bool>());
}

TEST(FlatParameters, AutogradAccumulatesIntoTheFlatGradient) {
  Net net = make_net();
  asg::FlatParameters flat(net->parameters());
  auto x = torch::randn({4, 3, 5, 5});
  auto ids = torch::randint(0, 11, {4, 2});
  net->forward(x, ids).sum().backward();
  auto once = flat.grad().clone();
  EXPECT_GT(once.abs().sum().item<double>(), 0);
  net->forward(x, ids).sum().backward();  // accumulates, as autograd always does
  EXPECT_TRUE(torch::allclose(flat.grad(), 2 * once));
  flat.zero_grad();
  EXPECT_EQ(net->fc->weight.grad().abs().sum().item<double>(), 0);
}

TEST(FlatAdamW, MatchesLibTorchAdamWAndClippingBitForBit) {
  Net ours = make_net();
  Net theirs = make_net();
  asg::FlatParameters flat(ours->parameters());
  asg::FlatAdamW adam(flat, asg::FlatAdamWOptions{0.9, 0.999, 1e-8, 0.05});
  auto their_params = theirs->parameters();
  torch::optim::AdamW reference(their_params, torch::optim::AdamWOptions(1e-2).weight_decay(0.05));

  torch::manual_seed(11);
  for (int step = 0; step < 25; ++step) {
    auto x = torch::randn({8, 3, 5, 5});
    auto ids = torch::randint(0, 11, {8, 3});
    auto y = torch::randn({8, 1});
    const double lr = 1e-2 * std::min(1.0, (step + 1) / 10.0);  // warm-up: lr changes every step

    flat.zero_grad();
    torch::mse_loss(ours->forward(x, ids), y).backward();
    const double our_norm = flat.clip_grad_norm(0.5);  // small enough that clipping happens
    adam.step(lr);

    reference.zero_grad();
    torch::mse_loss(theirs->forward(x, ids), y).backward();
    const double their_norm = torch::nn::utils::clip_grad_norm_(their_params, 0.5);
    for (auto& g : reference.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    reference.step();

    ASSERT_EQ(our_norm, their_norm) << "step " << step;
    auto our_params = ours->parameters();
    for (size_t i = 0; i < our_params.size(); ++i)
      ASSERT_TRUE(torch::equal(our_params[i], their_params[i])) << "step " << step << ", parameter " << i << ": max diff "
                                                                << (our_params[i] - their_params[i]).abs().max().item<double>();
  }
  EXPECT_EQ(adam.steps(), 25);
}

TEST(FlatParameters, RefusesParametersOfMixedDtype) {
  std::vector<torch::Tensor> params = {torch::zeros({3}, torch::kFloat).requires_grad_(),
                                       torch::zeros({3}, torch::kDouble).requires_grad_()};
  try {
    asg::FlatParameters flat(params);
    FAIL() << "mixed dtypes accepted";
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("parameter 1"), std::string::npos) << e.what();
  }
}

}  // namespace
