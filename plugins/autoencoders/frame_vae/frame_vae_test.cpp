#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>

#include "asg/error.h"
#include "asg/kinds/autoencoder.h"
#include "asg/nn/module_state.h"
#include "plugin_under_test.h"

namespace fs = std::filesystem;
using asg::testing::make_under_test;

namespace {

asg::AutoencoderContext clips(int64_t size = 16) { return {4, 3, size, size}; }

std::map<std::string, asg::ParamValue> small(std::map<std::string, asg::ParamValue> more = {}) {
  std::map<std::string, asg::ParamValue> p{{"channels", std::vector<int64_t>{8, 16, 16}}, {"latent_channels", int64_t{3}}};
  for (auto& [k, v] : more) p[k] = v;
  return p;
}

// Two-colour blobs on a transparent background: what a sticker frame looks like, in model space.
torch::Tensor blobs(int64_t batch, int64_t size = 16) {
  auto x = -torch::ones({batch, 4, 3, size, size});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < 3; ++t) {
      const int64_t at = (b * 3 + t * 2) % (size - 6);
      x.index({b, torch::indexing::Slice(), t, torch::indexing::Slice(at, at + 6), torch::indexing::Slice(at, at + 6)})
          .copy_(torch::tensor({0.8f, -0.2f, 0.1f, 1.f}).view({4, 1, 1}).expand({4, 6, 6}));
    }
  return x;
}

}  // namespace

TEST(FrameVae, CodesEveryFrameToALatentOneQuarterTheSize) {
  torch::manual_seed(0);
  auto vae = make_under_test<asg::Autoencoder>("frame_vae", small(), clips());
  const asg::LatentShape latent = vae->latent();
  EXPECT_EQ(latent.channels, 3);
  EXPECT_EQ(latent.frames, 3);
  EXPECT_EQ(latent.height, 4);
  EXPECT_EQ(latent.width, 4);
  EXPECT_EQ(latent.scaling_factor, 0.0);  // measured by the core
  EXPECT_EQ(vae->training().steps, 1000);
  auto x = blobs(2);
  torch::NoGradGuard no_grad;
  auto z = vae->encode(x);
  EXPECT_EQ(z.sizes(), torch::IntArrayRef({2, 3, 3, 4, 4}));
  EXPECT_EQ(vae->decode(z).sizes(), x.sizes());
  // Frames are coded independently: changing frame 1 changes only frame 1's latent.
  auto poked = x.clone();
  poked.select(2, 1).add_(0.5);
  auto diff = (vae->encode(poked) - z).abs().sum({0, 1, 3, 4});
  EXPECT_EQ(diff[0].item<double>(), 0.0);
  EXPECT_GT(diff[1].item<double>(), 0.0);
  EXPECT_EQ(diff[2].item<double>(), 0.0);
}

TEST(FrameVae, TrainingReducesTheReconstructionErrorAndTheWeightsReload) {
  torch::manual_seed(0);
  auto vae = make_under_test<asg::Autoencoder>("frame_vae", small(), clips());
  auto x = blobs(4);
  auto error = [&] {
    torch::NoGradGuard no_grad;
    return torch::mse_loss(vae->decode(vae->encode(x)), x).item<double>();
  };
  const double before = error();
  torch::optim::Adam opt(vae->parameters(), 3e-3);
  for (int i = 0; i < 150; ++i) {
    auto loss = vae->training_loss(x);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  const double after = error();
  EXPECT_LT(after, 0.25 * before) << before << " -> " << after;

  // The file format asg run writes (Module::save + the scaling factor) loads back frozen, bit for bit.
  const fs::path file = fs::temp_directory_path() / ("asg-frame-vae-" + std::to_string(::getpid()) + ".pt");
  {
    torch::serialize::OutputArchive archive;
    asg::nn::save_module_state(*vae, archive);
    archive.write(asg::kLatentScalingFactorKey, torch::tensor(1.25, torch::kDouble), true);
    archive.save_to(file.string());
  }
  auto loaded = make_under_test<asg::Autoencoder>("frame_vae", small({{"weights", file.string()}}), clips());
  EXPECT_EQ(loaded->training().steps, 0);
  EXPECT_EQ(loaded->latent().scaling_factor, 1.25);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loaded->encode(x), vae->encode(x)));
  // A file from a differently shaped VAE is refused, naming the file.
  try {
    make_under_test<asg::Autoencoder>("frame_vae", small({{"weights", file.string()}, {"latent_channels", int64_t{4}}}), clips());
    ADD_FAILURE() << "expected a config error";
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
  }
  fs::remove(file);
}

TEST(FrameVae, RefusesClipsItCannotDownsampleNamingTheKey) {
  try {
    make_under_test<asg::Autoencoder>("frame_vae", small(), clips(18));
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    const std::string what = e.what();
    EXPECT_NE(what.find("channels"), std::string::npos) << what;
    EXPECT_NE(what.find("18x18"), std::string::npos) << what;
    EXPECT_NE(what.find("divisible by 4"), std::string::npos) << what;
  }
}
