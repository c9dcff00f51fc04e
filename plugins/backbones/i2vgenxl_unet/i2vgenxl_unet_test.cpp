#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/backbone.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "plugin_under_test.h"
#include "reference_match.h"
#include "test_paths.h"
#include "unet3d_test_support.h"

using asg::testing::make_under_test;
using asg::testing::unet3d_context;

namespace {

struct ReferenceConfig {
  std::string name;
  std::map<std::string, asg::ParamValue> params;
  int64_t frames, height, width, text_dim, groups;
};

const std::map<std::string, asg::ParamValue> kDfgn = {{"image_latents", std::string("masked")},
                                                      {"image_context", false},
                                                      {"image_embedding", std::string("none")}};

std::map<std::string, asg::ParamValue> with(std::map<std::string, asg::ParamValue> params, const std::map<std::string, asg::ParamValue>& more) {
  for (const auto& [key, value] : more) params[key] = value;
  return params;
}

void expect_matches_diffusers(const ReferenceConfig& c) {
  SCOPED_TRACE(c.name);
  const auto dir = asg::testing::make_temp_dir("i2vgenxl-reference");
  ASSERT_TRUE(asg::testing::write_fixture("i2vgenxl_reference.py", dir, "--config " + c.name))
      << "the Python reference environment (.venv) could not build I2VGenXLUNet";
  // 4 latent channels and [conditioning]'s 5 condition channels (4 latents and the mask).
  auto net = make_under_test<asg::Backbone>("i2vgenxl_unet", c.params, unet3d_context(4, 5, c.frames, c.height, c.width, c.text_dim, c.groups));
  // diffusers' names are the backbone's, slots included: the whole state_dict loads as it is.
  asg::nn::load_named_tensors(*net, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "I2VGenXLUNet reference");
  auto io = asg::nn::read_safetensors(dir / "io.safetensors").tensors;
  torch::NoGradGuard no_grad;
  net->eval();
  const int64_t batch = io["sample"].size(0);
  asg::TextEmbedding text{io["encoder_hidden_states"], torch::ones({batch, io["encoder_hidden_states"].size(1)}, torch::kBool),
                          torch::zeros({batch, c.text_dim})};
  const auto t = io["timestep"].to(torch::kFloat32);
  auto out = net->image_embedding_dim() > 0 ? net->forward_with_image_embedding(io["sample"], t, text, io["image_embeddings"])
                                            : net->forward(io["sample"], t, text);
  EXPECT_TRUE(asg::testing::matches_reference(out, io["output"], 1e-5));
  std::filesystem::remove_all(dir);
}

const std::map<std::string, asg::ParamValue> kSmall = {{"block_out_channels", std::vector<int64_t>{32, 64}},
                                                       {"down_block_types", std::vector<std::string>{"CrossAttnDownBlock3D", "DownBlock3D"}},
                                                       {"up_block_types", std::vector<std::string>{"UpBlock3D", "CrossAttnUpBlock3D"}},
                                                       {"layers_per_block", int64_t{1}},
                                                       {"norm_num_groups", int64_t{8}},
                                                       {"attention_head_dim", int64_t{16}}};

}  // namespace

TEST(I2VGenXLUnet, MatchesDiffusersI2VGenXLUNet) {
  expect_matches_diffusers({"small", kSmall, 4, 8, 8, 24, 8});
  // Odd sizes on the way down (10x6 -> 5x3 -> 3x2): the up path interpolates to each skip's size.
  expect_matches_diffusers({"deep",
                            {{"block_out_channels", std::vector<int64_t>{32, 32, 64}},
                             {"down_block_types", std::vector<std::string>{"CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"}},
                             {"up_block_types", std::vector<std::string>{"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"}},
                             {"layers_per_block", int64_t{2}},
                             {"norm_num_groups", int64_t{4}},
                             {"attention_head_dim", int64_t{8}},
                             {"fps", int64_t{12}}},
                            3, 10, 6, 16, 4});
}

TEST(I2VGenXLUnet, AsRdtfsDfgnMatchesI2VGenXLUNetWithMaskedLatentsAndTheCaptionAlone) {
  expect_matches_diffusers({"dfgn",
                            with(kSmall, with(kDfgn, {{"block_out_channels", std::vector<int64_t>{32, 48, 64}},
                                                      {"down_block_types", std::vector<std::string>{"CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"}},
                                                      {"up_block_types", std::vector<std::string>{"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"}},
                                                      {"attention_head_dim", int64_t{8}},
                                                      {"fps", int64_t{8}}})),
                            5, 8, 8, 24, 8});
}

TEST(I2VGenXLUnet, TheImageLatentsFollowTheGivenFramesAndTheImageEmbeddingIsUsed) {
  torch::manual_seed(0);
  auto net = make_under_test<asg::Backbone>("i2vgenxl_unet", kSmall, unet3d_context(4, 5, 4, 8, 8, 24, 8));
  auto dfgn = make_under_test<asg::Backbone>("i2vgenxl_unet", with(kSmall, kDfgn), unet3d_context(4, 5, 4, 8, 8, 24, 8));
  EXPECT_EQ(net->image_embedding_dim(), 24);
  EXPECT_EQ(dfgn->image_embedding_dim(), 0);
  auto params = net->named_parameters();
  EXPECT_EQ(params["conv_in.weight"].size(1), 8);  // the noisy latents and the encoded image latents
  EXPECT_TRUE(params.contains("context_embedding.2.weight"));
  EXPECT_FALSE(dfgn->named_parameters().contains("context_embedding.2.weight"));
  EXPECT_FALSE(dfgn->named_parameters().contains("image_latents_context_embedding.0.weight"));
  for (auto& p : net->parameters()) p.data().add_(torch::randn_like(p) * 0.05);  // off zero-initialised layers
  for (auto& p : dfgn->parameters()) p.data().add_(torch::randn_like(p) * 0.05);
  net->eval();
  dfgn->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randn({1, 9, 4, 8, 8});
  x.narrow(1, 8, 1).zero_();
  x.narrow(1, 8, 1).narrow(2, 0, 1).fill_(1);  // frame 0 given
  x.narrow(1, 4, 4).narrow(2, 1, 3).zero_();
  auto t = torch::tensor({400.0f});
  asg::TextEmbedding text{torch::randn({1, 3, 24}), torch::ones({1, 3}, torch::kBool), torch::zeros({1, 24})};
  auto base = net->forward(x, t, text);
  // I2VGen-XL reads the first frame's latent only; DFGN reads every condition latent.
  auto later = x.clone();
  later.narrow(1, 4, 4).narrow(2, 2, 1).normal_();
  EXPECT_TRUE(torch::equal(net->forward(later, t, text), base));
  EXPECT_FALSE(torch::equal(dfgn->forward(later, t, text), dfgn->forward(x, t, text)));
  auto first = x.clone();
  first.narrow(1, 4, 4).narrow(2, 0, 1).normal_();
  EXPECT_FALSE(torch::equal(net->forward(first, t, text), base));
  // forward() is the unconditional image embedding (zeros); another embedding changes the prediction.
  EXPECT_TRUE(torch::equal(net->forward_with_image_embedding(x, t, text, torch::zeros({1, 24})), base));
  EXPECT_FALSE(torch::equal(net->forward_with_image_embedding(x, t, text, torch::randn({1, 24})), base));
}

TEST(I2VGenXLUnet, RefusesConditionChannelsItCannotRead) {
  EXPECT_EQ(asg::testing::config_error_of<asg::Backbone>("i2vgenxl_unet", kSmall, unet3d_context(4, 3, 4, 8, 8, 24, 8)),
            "[backbone] i2vgenxl_unet takes the 5 condition channels of [conditioning] (the condition latents and their mask), not 3");
}
