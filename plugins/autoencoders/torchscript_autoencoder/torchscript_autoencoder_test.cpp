// The TorchScript loading path, with autoencoders that scripts/fixtures/write_autoencoder_torchscript.py
// writes with random weights (the reference environment's torch).
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/kinds/autoencoder.h"
#include "plugin_under_test.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using asg::testing::make_under_test;

namespace {

class TorchScriptAutoencoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("asg-ae-ts-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (const auto& [name, args] : {std::pair<std::string, std::string>{"rgb.pt", ""},
                                     {"rgba.pt", "--channels 4 --latent 3 --factor 2"},
                                     {"wrong.pt", "--wrong-interface"}})
      ASSERT_TRUE(asg::testing::write_fixture("write_autoencoder_torchscript.py", dir_ / name, args))
          << name << " (torch: the reference environment, scripts/setup.sh)";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::map<std::string, asg::ParamValue> params(const std::string& model, std::map<std::string, asg::ParamValue> more = {}) {
    std::map<std::string, asg::ParamValue> p{{"model", (dir_ / model).string()}, {"sha256", asg::sha256_file(dir_ / model)}};
    for (auto& [k, v] : more) p[k] = v;
    return p;
  }
  static std::string config_error_of(const std::map<std::string, asg::ParamValue>& p) {
    return asg::testing::config_error_of<asg::Autoencoder>("torchscript_autoencoder", p, asg::AutoencoderContext{4, 2, 16, 16});
  }
  static fs::path dir_;
};
fs::path TorchScriptAutoencoderTest::dir_;

TEST_F(TorchScriptAutoencoderTest, CodesEveryFrameThroughTheModule) {
  auto ae = make_under_test<asg::Autoencoder>("torchscript_autoencoder", params("rgb.pt"), asg::AutoencoderContext{4, 2, 16, 16});
  const asg::LatentShape latent = ae->latent();
  EXPECT_EQ(latent.channels, 4);
  EXPECT_EQ(latent.frames, 2);
  EXPECT_EQ(latent.height, 4);
  EXPECT_EQ(latent.width, 4);
  EXPECT_DOUBLE_EQ(latent.scaling_factor, 0.18215);
  EXPECT_EQ(ae->training().steps, 0);  // frozen

  torch::manual_seed(0);
  auto x = torch::rand({2, 4, 2, 16, 16}) * 2 - 1;
  torch::NoGradGuard no_grad;
  auto z = ae->encode(x);
  ASSERT_EQ(z.sizes(), torch::IntArrayRef({2, 4, 2, 4, 4}));
  // Frame (1, 1) of the clip batch is the module's encode of that frame, the RGB channels only.
  auto module = torch::jit::load((dir_ / "rgb.pt").string());
  auto direct = module.get_method("encode")({x.select(0, 1).select(1, 1).narrow(0, 0, 3).unsqueeze(0)}).toTensor();
  EXPECT_TRUE(torch::allclose(z.select(0, 1).select(1, 1), direct.squeeze(0), 1e-5, 1e-6));
  // Decoded clips have the clip's shape and, from an RGB module, are opaque.
  auto back = ae->decode(z);
  ASSERT_EQ(back.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(back.select(1, 3), torch::ones_like(back.select(1, 3))));
  // Alpha plays no part in an RGB module's latents.
  auto other_alpha = x.clone();
  other_alpha.select(1, 3).fill_(0.3);
  EXPECT_TRUE(torch::equal(ae->encode(other_alpha), z));
}

TEST_F(TorchScriptAutoencoderTest, RgbaModulesKeepTheirAlpha) {
  auto ae = make_under_test<asg::Autoencoder>("torchscript_autoencoder", params("rgba.pt", {{"image_channels", int64_t{4}}}),
                                              asg::AutoencoderContext{4, 2, 16, 16});
  EXPECT_EQ(ae->latent().channels, 3);
  EXPECT_EQ(ae->latent().height, 8);
  torch::NoGradGuard no_grad;
  auto x = torch::rand({1, 4, 2, 16, 16}) * 2 - 1;
  auto back = ae->decode(ae->encode(x));
  EXPECT_EQ(back.sizes(), x.sizes());
  EXPECT_FALSE(torch::equal(back.select(1, 3), torch::ones_like(back.select(1, 3))));
}

TEST_F(TorchScriptAutoencoderTest, RefusesAWrongHashNamingBothHashes) {
  const std::string wrong(64, 'a');
  const std::string what = config_error_of(params("rgb.pt", {{"sha256", wrong}}));
  EXPECT_NE(what.find((dir_ / "rgb.pt").string()), std::string::npos) << what;
  EXPECT_NE(what.find(wrong), std::string::npos) << what;
  EXPECT_NE(what.find(asg::sha256_file(dir_ / "rgb.pt")), std::string::npos) << what;
}

TEST_F(TorchScriptAutoencoderTest, RefusesTheWrongInterfaceOrChannelsNamingTheInterface) {
  std::string what = config_error_of(params("wrong.pt"));
  EXPECT_NE(what.find("no method 'decode'"), std::string::npos) << what;
  EXPECT_NE(what.find("encode(x: Tensor[N, C, H, W]"), std::string::npos) << what;
  what = config_error_of(params("rgb.pt", {{"image_channels", int64_t{4}}}));  // an RGB module fed RGBA
  EXPECT_NE(what.find((dir_ / "rgb.pt").string()), std::string::npos) << what;
  EXPECT_NE(what.find("image_channels"), std::string::npos) << what;
}

}  // namespace
