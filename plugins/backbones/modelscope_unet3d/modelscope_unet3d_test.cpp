#include <fmt/format.h>
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

namespace {

using asg::testing::unet3d_context;

struct ReferenceConfig {
  std::string name;
  std::map<std::string, asg::ParamValue> params;
  int64_t channels, condition, frames, height, width, text_dim, groups;
};

void expect_matches_diffusers(const ReferenceConfig& c) {
  SCOPED_TRACE(c.name);
  const auto dir = asg::testing::make_temp_dir("unet3d-reference");
  ASSERT_TRUE(asg::testing::write_fixture("unet3d_reference.py", dir, "--config " + c.name))
      << "the Python reference environment (.venv) could not build UNet3DConditionModel";
  auto net = make_under_test<asg::Backbone>("modelscope_unet3d", c.params,
                                            unet3d_context(c.channels, c.condition, c.frames, c.height, c.width, c.text_dim, c.groups));
  // diffusers' names are the backbone's, slots included: the whole state_dict loads as it is.
  asg::nn::load_named_tensors(*net, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "UNet3DConditionModel reference");
  auto io = asg::nn::read_safetensors(dir / "io.safetensors").tensors;
  torch::NoGradGuard no_grad;
  net->eval();
  asg::TextEmbedding text{io["encoder_hidden_states"], torch::ones({io["sample"].size(0), io["encoder_hidden_states"].size(1)}, torch::kBool),
                          torch::zeros({io["sample"].size(0), c.text_dim})};
  auto out = net->forward(io["sample"], io["timestep"].to(torch::kFloat32), text);
  EXPECT_TRUE(asg::testing::matches_reference(out, io["output"], 1e-5));
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST(ModelScopeUnet3d, MatchesDiffusersUNet3DConditionModel) {
  expect_matches_diffusers({"small",
                            {{"block_out_channels", std::vector<int64_t>{32, 64}},
                             {"down_block_types", std::vector<std::string>{"CrossAttnDownBlock3D", "DownBlock3D"}},
                             {"up_block_types", std::vector<std::string>{"UpBlock3D", "CrossAttnUpBlock3D"}},
                             {"layers_per_block", int64_t{1}},
                             {"norm_num_groups", int64_t{8}},
                             {"attention_head_dim", int64_t{16}}},
                            4, 0, 4, 8, 8, 24, 8});
  // Odd sizes on the way down (10x6 -> 5x3 -> 3x2): the up path interpolates to each skip's size.
  expect_matches_diffusers({"deep",
                            {{"block_out_channels", std::vector<int64_t>{32, 32, 64}},
                             {"down_block_types", std::vector<std::string>{"CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"}},
                             {"up_block_types", std::vector<std::string>{"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"}},
                             {"layers_per_block", int64_t{2}},
                             {"norm_num_groups", int64_t{4}},
                             {"attention_head_dim", int64_t{8}}},
                            4, 5, 3, 10, 6, 16, 4});
}

TEST(ModelScopeUnet3d, HasATemporalSlotAtEachOfModelScopes22TempConvPositions) {
  std::vector<asg::TemporalContext> seen;
  auto net = make_under_test<asg::Backbone>("modelscope_unet3d",
                                            {{"block_out_channels", std::vector<int64_t>{32, 32, 64, 64}},
                                             {"norm_num_groups", int64_t{8}},
                                             {"attention_head_dim", int64_t{16}}},
                                            unet3d_context(4, 0, 8, 16, 16, 24, 8, &seen));
  ASSERT_EQ(seen.size(), 22u);  // 4 levels x 2 down, 2 in the mid block, 4 levels x 3 up
  EXPECT_EQ(seen.front().name, "down_blocks.0.temp_convs.0");
  EXPECT_EQ(seen[8].name, "mid_block.temp_convs.0");
  EXPECT_EQ(seen.back().name, "up_blocks.3.temp_convs.2");
  EXPECT_EQ(seen[7].height, 2);  // the deepest level: 16 / 2^3
  EXPECT_EQ(seen[7].channels, 64);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].index, static_cast<int64_t>(i));
  // 64-channel levels have 4 heads of 16: the spatial transformer's q projection is [64, 64].
  auto params = net->named_parameters();
  EXPECT_EQ(params["down_blocks.3.resnets.0.conv1.weight"].size(0), 64);
  EXPECT_TRUE(params.contains("transformer_in.proj_in.weight"));
  EXPECT_EQ(params["transformer_in.proj_in.weight"].size(0), 8 * 16);  // transformer_in: 8 heads of attention_head_dim
  EXPECT_TRUE(params.contains("up_blocks.2.upsamplers.0.conv.weight"));
  EXPECT_FALSE(params.contains("up_blocks.3.upsamplers.0.conv.weight"));
}

TEST(ModelScopeUnet3d, RefusesInconsistentConfigurationsNamingTheKey) {
  auto error_of = [](const std::map<std::string, asg::ParamValue>& p, int64_t text_dim = 24) {
    return asg::testing::config_error_of<asg::Backbone>("modelscope_unet3d", p, unet3d_context(4, 0, 4, 8, 8, text_dim, 8));
  };
  EXPECT_EQ(error_of({{"block_out_channels", std::vector<int64_t>{32, 64}}, {"norm_num_groups", int64_t{8}}, {"attention_head_dim", int64_t{16}}}),
            "[backbone] down_block_types (4) and up_block_types (4) need one entry per block_out_channels entry (2)");
  EXPECT_EQ(error_of({{"block_out_channels", std::vector<int64_t>{32, 48, 64, 64}}, {"norm_num_groups", int64_t{8}}, {"attention_head_dim", int64_t{32}}}),
            "[backbone] block_out_channels entry 48 is not divisible by attention_head_dim = 32 (heads are 32 channels wide)");
  EXPECT_EQ(error_of({{"block_out_channels", std::vector<int64_t>{32, 32, 64, 64}}, {"norm_num_groups", int64_t{8}},
                      {"attention_head_dim", int64_t{16}}, {"cross_attention_dim", int64_t{1024}}}),
            "[backbone] cross_attention_dim = 1024 but the text encoder gives 24 (valid: 24, or 0 to take it)");
}

TEST(ModelScopeUnet3d, PutsVideoFactorysSwapAttentionWhereTheTemporalTransformersAre) {
  std::map<std::string, asg::ParamValue> p = {{"block_out_channels", std::vector<int64_t>{32, 64}},
                                              {"down_block_types", std::vector<std::string>{"CrossAttnDownBlock3D", "DownBlock3D"}},
                                              {"up_block_types", std::vector<std::string>{"UpBlock3D", "CrossAttnUpBlock3D"}},
                                              {"layers_per_block", int64_t{1}},
                                              {"norm_num_groups", int64_t{8}},
                                              {"attention_head_dim", int64_t{16}},
                                              {"temp_attentions", std::string("swap")},
                                              {"swap_window", int64_t{4}}};
  torch::manual_seed(0);
  auto net = make_under_test<asg::Backbone>("modelscope_unet3d", p, unet3d_context(4, 0, 4, 8, 8, 24, 8));
  auto params = net->named_parameters();
  EXPECT_TRUE(params.contains("down_blocks.0.temp_attentions.0.to_q.weight"));
  EXPECT_TRUE(params.contains("up_blocks.1.temp_attentions.1.proj_out.weight"));
  EXPECT_FALSE(params.contains("down_blocks.0.temp_attentions.0.proj_in.weight"));  // no TransformerTemporalModel
  EXPECT_TRUE(params.contains("transformer_in.proj_in.weight"));                     // transformer_in stays
  // The swap blocks start as the identity (zero-initialised output), so they change nothing until trained;
  // moved off zero, they change the prediction.
  auto x = torch::randn({1, 4, 4, 8, 8});
  asg::TextEmbedding text{torch::randn({1, 3, 24}), torch::ones({1, 3}, torch::kBool), torch::zeros({1, 24})};
  torch::NoGradGuard no_grad;
  net->eval();
  auto before = net->forward(x, torch::tensor({300.0f}), text);
  for (auto& item : params)
    if (item.key().find("temp_attentions") != std::string::npos) item.value().add_(0.1 * torch::randn_like(item.value()));
  EXPECT_FALSE(torch::allclose(net->forward(x, torch::tensor({300.0f}), text), before));
}
