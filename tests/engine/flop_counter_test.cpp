// The FLOP counter against hand-counted products: a linear layer and a convolution, forward and backward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/flop_counter.h"

TEST(FlopCounter, CountsALinearLayerForwardAndBackward) {
  torch::manual_seed(0);
  torch::nn::Linear layer(32, 16);
  auto x = torch::randn({8, 32}, torch::requires_grad());
  const double forward = 2.0 * 8 * 32 * 16;
  asg::FlopCounter counter;
  auto y = layer->forward(x);
  EXPECT_EQ(counter.flops(), forward);  // addmm
  y.sum().backward();
  EXPECT_EQ(counter.flops(), 3 * forward);  // + the input and the weight gradients
}

TEST(FlopCounter, CountsBatchedProductsAndConvolutionsIncludingStridesAndGroups) {
  torch::manual_seed(0);
  {
    asg::FlopCounter counter;
    torch::NoGradGuard no_grad;
    torch::matmul(torch::randn({3, 5, 7}), torch::randn({3, 7, 2}));
    EXPECT_EQ(counter.flops(), 2.0 * 3 * 5 * 7 * 2);
  }
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(4, 6, 3).stride(2).padding(1).groups(2));
  auto x = torch::randn({2, 4, 9, 9}, torch::requires_grad());
  // Output 5x5; each output element is a dot product over (4 / 2) x 3 x 3 inputs.
  const double forward = 2.0 * 2 * 6 * 5 * 5 * 2 * 3 * 3;
  asg::FlopCounter counter;
  auto y = conv->forward(x);
  EXPECT_EQ(counter.flops(), forward);
  y.sum().backward();
  EXPECT_EQ(counter.flops(), 3 * forward);
}

TEST(FlopCounter, OneAtATimeAndNothingCountedOutsideIt) {
  auto a = torch::randn({4, 4});
  {
    asg::FlopCounter counter;
    EXPECT_THROW(asg::FlopCounter second, asg::Error);
    torch::NoGradGuard no_grad;
    a.mm(a);
    EXPECT_EQ(counter.flops(), 2.0 * 4 * 4 * 4);
  }
  a.mm(a);  // no counter alive: nothing to count, nothing crashes
  asg::FlopCounter again;
  EXPECT_EQ(again.flops(), 0.0);
}
