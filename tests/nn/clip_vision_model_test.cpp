// asg::nn's CLIP image tower against transformers at random weights: CLIPVisionModelWithProjection and
// CLIPVisionModel, one configuration each (scripts/fixtures/clip_vision_reference.py says which: patch sizes,
// widths, depths, heads and activations differ), within 1e-5 relative in float32.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/nn/clip_vision_model.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "reference_match.h"
#include "test_paths.h"

namespace {

struct Reference {
  std::filesystem::path dir;
  std::map<std::string, torch::Tensor> weights, io;
};

Reference make_reference(const std::string& config) {
  Reference r;
  r.dir = asg::testing::make_temp_dir("clip-vision-" + config);
  EXPECT_TRUE(asg::testing::write_fixture("clip_vision_reference.py", r.dir, "--config " + config))
      << "the Python reference environment (.venv) could not build the CLIP vision reference";
  r.weights = asg::nn::read_safetensors(r.dir / "weights.safetensors").tensors;
  r.io = asg::nn::read_safetensors(r.dir / "io.safetensors").tensors;
  return r;
}

}  // namespace

TEST(ClipVisionModel, MatchesTransformersWithAndWithoutProjection) {
  torch::NoGradGuard no_grad;
  {
    SCOPED_TRACE("small: 32x32 of 8x8 patches, quick_gelu, visual_projection");
    auto r = make_reference("small");
    asg::nn::ClipVisionModel model(asg::nn::ClipVisionOptions{.image_size = 32, .patch_size = 8, .hidden_size = 32, .intermediate_size = 64,
                                                              .layers = 2, .heads = 4, .activation = asg::nn::TextActivation::QuickGelu,
                                                              .projection_dim = 24});
    asg::nn::load_named_tensors(*model, r.weights, "CLIPVisionModelWithProjection reference");
    auto out = model->forward(r.io["pixels"]);
    EXPECT_TRUE(asg::testing::matches_reference(out.hidden, r.io["hidden"])) << "last_hidden_state";
    EXPECT_TRUE(asg::testing::matches_reference(out.pooled, r.io["pooled"])) << "pooler_output";
    EXPECT_TRUE(asg::testing::matches_reference(out.projected, r.io["projected"])) << "image_embeds";
    std::filesystem::remove_all(r.dir);
  }
  {
    SCOPED_TRACE("deep: 28x28 of 7x7 patches, 3 layers of 48, 3 heads, gelu, no projection");
    auto r = make_reference("deep");
    asg::nn::ClipVisionModel model(asg::nn::ClipVisionOptions{.image_size = 28, .patch_size = 7, .hidden_size = 48, .intermediate_size = 96,
                                                              .layers = 3, .heads = 3, .activation = asg::nn::TextActivation::Gelu,
                                                              .projection_dim = 0});
    asg::nn::load_named_tensors(*model, r.weights, "CLIPVisionModel reference");
    auto out = model->forward(r.io["pixels"]);
    EXPECT_TRUE(asg::testing::matches_reference(out.hidden, r.io["hidden"]));
    EXPECT_TRUE(asg::testing::matches_reference(out.pooled, r.io["pooled"]));
    EXPECT_FALSE(out.projected.defined());
    std::filesystem::remove_all(r.dir);
  }
}

TEST(ClipVisionModel, RefusesPatchesThatDoNotTileAndPixelsOfAnotherSize) {
  EXPECT_THROW(asg::nn::ClipVisionModel(asg::nn::ClipVisionOptions{.image_size = 30, .patch_size = 8}), asg::Error);
  asg::nn::ClipVisionModel model(asg::nn::ClipVisionOptions{.image_size = 16, .patch_size = 8, .hidden_size = 8, .intermediate_size = 16,
                                                            .layers = 1, .heads = 2, .projection_dim = 4});
  try {
    model->forward(torch::zeros({1, 3, 24, 24}));
    FAIL() << "24x24 pixels reached a 16x16 tower";
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[B, 3, 16, 16]"), std::string::npos) << e.what();
  }
}
