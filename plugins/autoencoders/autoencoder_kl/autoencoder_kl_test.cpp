#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/autoencoder.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "plugin_under_test.h"
#include "reference_match.h"
#include "test_paths.h"

using asg::testing::make_under_test;

namespace {

struct ReferenceConfig {
  std::string name;
  std::map<std::string, asg::ParamValue> params;
  int64_t image_channels, frames, height, width;
};

void expect_matches_diffusers(const ReferenceConfig& c) {
  SCOPED_TRACE(c.name);
  const auto dir = asg::testing::make_temp_dir("autoencoder-kl-reference");
  ASSERT_TRUE(asg::testing::write_fixture("autoencoder_kl_reference.py", dir, "--config " + c.name))
      << "the Python reference environment (.venv) could not build AutoencoderKL";
  auto vae = make_under_test<asg::Autoencoder>("autoencoder_kl", c.params, asg::AutoencoderContext{4, c.frames, c.height, c.width});
  asg::nn::load_named_tensors(*vae, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "AutoencoderKL reference");
  auto io = asg::nn::read_safetensors(dir / "io.safetensors").tensors;
  torch::NoGradGuard no_grad;
  // The reference codes frames [T, C, H, W]; the plugin clips [B, 4, T, H, W] (RGBA: alpha is not coded with 3 channels).
  auto clip = io["frames"].transpose(0, 1).unsqueeze(0);
  if (c.image_channels == 3) clip = torch::cat({clip, torch::ones_like(clip.narrow(1, 0, 1))}, 1);
  auto mean = vae->encode(clip);
  EXPECT_TRUE(asg::testing::matches_reference(mean.squeeze(0).transpose(0, 1), io["mean"], 1e-5)) << "encode";
  auto decoded = vae->decode(io["latents"].transpose(0, 1).unsqueeze(0));
  EXPECT_TRUE(asg::testing::matches_reference(decoded.squeeze(0).narrow(0, 0, c.image_channels).transpose(0, 1), io["decoded"], 1e-5))
      << "decode";
  if (c.image_channels == 3) {
    EXPECT_TRUE(torch::all(decoded.select(1, 3) == 1).item<bool>()) << "RGB codes no alpha: decoded frames are opaque";
  }
  const auto latent = vae->latent();
  EXPECT_EQ(latent.height, mean.size(3));
  EXPECT_EQ(latent.width, mean.size(4));
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST(AutoencoderKl, EncodesAndDecodesAsDiffusersAutoencoderKL) {
  expect_matches_diffusers({"small",
                            {{"block_out_channels", std::vector<int64_t>{32, 64}}, {"layers_per_block", int64_t{1}}, {"norm_num_groups", int64_t{8}}},
                            3, 3, 16, 16});
  expect_matches_diffusers({"wide",
                            {{"block_out_channels", std::vector<int64_t>{32, 32, 64}},
                             {"layers_per_block", int64_t{2}},
                             {"norm_num_groups", int64_t{4}},
                             {"image_channels", int64_t{4}},
                             {"latent_channels", int64_t{3}}},
                            4, 2, 24, 16});
}

TEST(AutoencoderKl, DefaultsAreStableDiffusionsVaeAndRefuseSizesItCannotCode) {
  auto vae = make_under_test<asg::Autoencoder>("autoencoder_kl", {}, asg::AutoencoderContext{4, 8, 256, 256});
  const auto latent = vae->latent();
  EXPECT_EQ(latent.channels, 4);
  EXPECT_EQ(latent.height, 32);  // 1/8: 256x256 frames have 32x32x4 latents
  EXPECT_DOUBLE_EQ(latent.scaling_factor, 0.18215);
  EXPECT_EQ(vae->training().steps, 0);  // frozen
  int64_t params = 0;
  for (const auto& p : vae->parameters()) params += p.numel();
  EXPECT_EQ(params, 83653863);  // diffusers AutoencoderKL at SD's configuration has 83,653,863
  EXPECT_EQ(asg::testing::config_error_of<asg::Autoencoder>("autoencoder_kl", {}, asg::AutoencoderContext{4, 8, 100, 64}),
            "frames of 100x64 cannot be coded: 4 levels downsample by 8 (valid: a height and width divisible by 8, or fewer "
            "block_out_channels)");
}
