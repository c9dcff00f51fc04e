// asg::nn's diffusers building blocks against diffusers itself: the reference environment builds each block
// at random weights (scripts/fixtures/diffusers_blocks_reference.py), and the same weights, loaded by name,
// must give the same output within 1e-5 relative in float32.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/nn/diffusers_attention.h"
#include "asg/nn/feed_forward.h"
#include "asg/nn/module_state.h"
#include "asg/nn/resnet_block.h"
#include "asg/nn/safetensors.h"
#include "reference_match.h"
#include "test_paths.h"

namespace {

class DiffusersBlocks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = asg::testing::make_temp_dir("diffusers-blocks");
    written_ = asg::testing::write_fixture("diffusers_blocks_reference.py", dir_);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  void SetUp() override { ASSERT_TRUE(written_) << "the Python reference environment (.venv) could not build the blocks"; }

  // Loads block `name`'s reference weights into `module` (every key used) and returns its inputs and output.
  std::map<std::string, torch::Tensor> load(torch::nn::Module& module, const std::string& name) {
    asg::nn::load_named_tensors(module, asg::nn::read_safetensors(dir_ / (name + ".weights.safetensors")).tensors, name);
    return asg::nn::read_safetensors(dir_ / (name + ".io.safetensors")).tensors;
  }

  torch::NoGradGuard no_grad_;
  static inline std::filesystem::path dir_;
  static inline bool written_ = false;
};

TEST_F(DiffusersBlocks, SelfAttentionMatches) {
  asg::nn::DiffusersAttention m(asg::nn::DiffusersAttentionOptions{48, 0, 3, 16});
  auto io = load(*m, "self_attention");
  EXPECT_TRUE(asg::testing::matches_reference(m->forward(io["x"]), io["output"]));
}

TEST_F(DiffusersBlocks, CrossAttentionWithProjectionBiasesMatches) {
  asg::nn::DiffusersAttentionOptions o{40, 24, 5, 8};
  o.qkv_bias = true;
  asg::nn::DiffusersAttention m(o);
  auto io = load(*m, "cross_attention");
  EXPECT_TRUE(asg::testing::matches_reference(m->forward(io["x"], io["context"]), io["output"]));
}

TEST_F(DiffusersBlocks, GegluFeedForwardMatches) {
  asg::nn::FeedForward m(asg::nn::FeedForwardOptions{32, 24, 4, asg::nn::FeedForwardActivation::Geglu});
  auto io = load(*m, "feed_forward_geglu");
  EXPECT_TRUE(asg::testing::matches_reference(m->forward(io["x"]), io["output"]));
}

TEST_F(DiffusersBlocks, GeluFeedForwardMatches) {
  asg::nn::FeedForward m(asg::nn::FeedForwardOptions{32, 0, 2, asg::nn::FeedForwardActivation::Gelu});
  auto io = load(*m, "feed_forward_gelu");
  EXPECT_TRUE(asg::testing::matches_reference(m->forward(io["x"]), io["output"]));
}

TEST_F(DiffusersBlocks, ResnetBlockWithTimeEmbeddingAndShortcutMatches) {
  asg::nn::ResnetBlock m(asg::nn::ResnetBlockOptions{32, 64, 40, 8});
  auto io = load(*m, "resnet_temb");
  EXPECT_TRUE(asg::testing::matches_reference(m->forward(io["x"], io["temb"]), io["output"]));
}

TEST_F(DiffusersBlocks, ResnetBlockWithoutTimeEmbeddingMatches) {
  asg::nn::ResnetBlock m(asg::nn::ResnetBlockOptions{8, 8, 0, 1});
  auto io = load(*m, "resnet_plain");
  EXPECT_TRUE(asg::testing::matches_reference(m->forward(io["x"]), io["output"]));
}

}  // namespace
