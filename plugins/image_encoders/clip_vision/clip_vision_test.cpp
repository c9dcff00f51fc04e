// clip_vision end to end against diffusers' I2VGenXLPipeline preprocessing and transformers'
// CLIPVisionModelWithProjection on the same pictures (scripts/fixtures/clip_vision_reference.py --pipeline):
// a square, a tall and a wide picture, each in a batch with its mirror image. Then transparency and refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include "asg/kinds/image_encoder.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "i2vgenxl_image_preprocess.h"
#include "plugin_under_test.h"
#include "reference_match.h"
#include "test_paths.h"

using asg::testing::config_error_of;
using asg::testing::make_under_test;

namespace {

const std::map<std::string, asg::ParamValue> kSmallTower = {
    {"image_size", int64_t{32}}, {"patch_size", int64_t{8}}, {"hidden_size", int64_t{32}}, {"intermediate_size", int64_t{64}},
    {"layers", int64_t{2}},      {"heads", int64_t{4}},      {"activation", std::string("quick_gelu")}, {"projection_dim", int64_t{24}}};

// uint8 pictures [B, H, W, 3] as opaque model-space frames [B, 4, H, W].
torch::Tensor opaque_frames(const torch::Tensor& rgb) {
  auto x = rgb.permute({0, 3, 1, 2}).to(torch::kFloat32) / 255.0;
  return torch::cat({x, torch::ones_like(x.narrow(1, 0, 1))}, 1) * 2 - 1;
}

}  // namespace

TEST(ClipVision, GivesI2VGenXLPipelinesImageEmbeddingOfSquareTallAndWidePictures) {
  const auto dir = asg::testing::make_temp_dir("clip-vision-pipeline");
  ASSERT_TRUE(asg::testing::write_fixture("clip_vision_reference.py", dir, "--config small --pipeline"))
      << "the Python reference environment (.venv) could not run diffusers' I2VGen-XL preprocessing";
  auto encoder = make_under_test<asg::ImageEncoder>("clip_vision", kSmallTower);
  asg::nn::load_named_tensors(*encoder, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "CLIPVisionModelWithProjection reference");
  EXPECT_EQ(encoder->dim(), 24);
  for (const auto& p : encoder->parameters()) EXPECT_FALSE(p.requires_grad()) << "a pretrained image encoder is frozen";
  for (const char* name : {"pipeline_0", "pipeline_1", "pipeline_2"}) {
    auto io = asg::nn::read_safetensors(dir / (std::string(name) + ".safetensors")).tensors;
    SCOPED_TRACE(fmt::format("{}: {}", name, c10::str(io["rgb"].sizes())));
    const auto frames = opaque_frames(io["rgb"]);
    for (int64_t b = 0; b < 2; ++b) {
      // The same 8-bit picture after Pillow's box and bilinear resizes: equal pixels, not close ones.
      const auto pixels = asg::image_encoders::i2vgenxl_image_pixels(frames[b], {0, 0, 0}, 32);
      EXPECT_LE((pixels - io["pixels"][b]).abs().max().item<double>(), 1e-6) << "frame " << b;
    }
    EXPECT_TRUE(asg::testing::matches_reference(encoder->encode(frames), io["image_embeds"])) << "image_embeds";
    // One frame's embedding does not depend on the batch.
    EXPECT_TRUE(asg::testing::matches_reference(encoder->encode(frames.narrow(0, 1, 1)), io["image_embeds"].narrow(0, 1, 1)));
  }
  std::filesystem::remove_all(dir);
}

TEST(ClipVision, TransparentPixelsShowTheBackground) {
  auto rgb = torch::randint(0, 256, {1, 40, 40, 3}, torch::kUInt8);
  torch::manual_seed(5);
  auto encoder = make_under_test<asg::ImageEncoder>("clip_vision", kSmallTower);
  auto frame = opaque_frames(rgb);
  // The left half fully transparent: premultiplied, its colour is gone (-1 everywhere, alpha included).
  frame.narrow(3, 0, 20).fill_(-1);
  auto black = rgb.clone();
  black.narrow(2, 0, 20).fill_(0);
  EXPECT_TRUE(torch::equal(encoder->encode(frame), encoder->encode(opaque_frames(black)))) << "the default background is black";
  auto params = kSmallTower;
  params["background"] = std::vector<double>{1, 1, 1};
  torch::manual_seed(5);  // the same initial weights as `encoder`
  auto on_white = make_under_test<asg::ImageEncoder>("clip_vision", params);
  auto white = rgb.clone();
  white.narrow(2, 0, 20).fill_(255);
  EXPECT_TRUE(torch::equal(asg::image_encoders::frame_to_rgb8(frame[0], {1, 1, 1}), white[0]));
  EXPECT_TRUE(torch::equal(on_white->encode(frame), encoder->encode(opaque_frames(white)))) << "background = [1, 1, 1]";
}

TEST(ClipVision, RefusesABackgroundThatIsNotRgbAndPatchesThatDoNotTile) {
  auto params = kSmallTower;
  params["background"] = std::vector<double>{1, 1};
  EXPECT_NE(config_error_of<asg::ImageEncoder>("clip_vision", params).find("background has 2 values"), std::string::npos);
  params["background"] = std::vector<double>{0, 2, 0};
  EXPECT_NE(config_error_of<asg::ImageEncoder>("clip_vision", params).find("outside [0, 1]"), std::string::npos);
  params = kSmallTower;
  params["image_size"] = int64_t{36};
  EXPECT_NE(config_error_of<asg::ImageEncoder>("clip_vision", params).find("patch_size = 8"), std::string::npos);
}
