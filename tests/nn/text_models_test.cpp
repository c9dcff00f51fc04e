// asg::nn's text towers against transformers at random weights: CLIPTextModel(WithProjection), T5EncoderModel
// and Chinese-CLIP's BERT text side, two configurations each (scripts/fixtures/text_models_reference.py says
// which), with and without the tokenizer's padding mask, within 1e-5 relative in float32.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/nn/bert_model.h"
#include "asg/nn/clip_text_model.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "asg/nn/t5_encoder.h"
#include "reference_match.h"
#include "test_paths.h"

namespace {

using Tensors = std::map<std::string, torch::Tensor>;

struct Reference {
  std::filesystem::path dir;
  Tensors weights, io;
};

Reference make_reference(const std::string& model, const std::string& config) {
  Reference r;
  r.dir = asg::testing::make_temp_dir("text-model-" + model + "-" + config);
  EXPECT_TRUE(asg::testing::write_fixture("text_models_reference.py", r.dir, "--model " + model + " --config " + config))
      << "the Python reference environment (.venv) could not build the " << model << " reference";
  r.weights = asg::nn::read_safetensors(r.dir / "weights.safetensors").tensors;
  r.io = asg::nn::read_safetensors(r.dir / "io.safetensors").tensors;
  return r;
}

}  // namespace

TEST(ClipTextModel, MatchesTransformersWithAndWithoutProjectionMaskAndClipSkip) {
  torch::NoGradGuard no_grad;
  {
    SCOPED_TRACE("small: quick_gelu, text_projection");
    auto r = make_reference("clip", "small");
    asg::nn::ClipTextModel model(asg::nn::ClipTextOptions{.vocab_size = 1000, .hidden_size = 32, .intermediate_size = 64, .layers = 2,
                                                          .heads = 4, .max_positions = 16, .eos_token_id = 999, .projection_dim = 24});
    asg::nn::load_named_tensors(*model, r.weights, "CLIPTextModelWithProjection reference");
    auto out = model->forward(r.io["ids"]);
    EXPECT_TRUE(asg::testing::matches_reference(out.hidden, r.io["hidden"])) << "last_hidden_state";
    EXPECT_TRUE(asg::testing::matches_reference(out.pooled, r.io["pooled"])) << "pooler_output (at the first eos)";
    EXPECT_TRUE(asg::testing::matches_reference(out.projected, r.io["projected"])) << "text_embeds";
    EXPECT_TRUE(asg::testing::matches_reference(model->forward(r.io["ids"], r.io["mask"]).hidden, r.io["hidden_masked"])) << "padding mask";
    std::filesystem::remove_all(r.dir);
  }
  {
    SCOPED_TRACE("deep: gelu, 4 layers, 3 heads, clip_skip");
    auto r = make_reference("clip", "deep");
    asg::nn::ClipTextModel model(asg::nn::ClipTextOptions{.vocab_size = 1000, .hidden_size = 48, .intermediate_size = 96, .layers = 4,
                                                          .heads = 3, .max_positions = 20, .activation = asg::nn::TextActivation::Gelu,
                                                          .eos_token_id = 999});
    asg::nn::load_named_tensors(*model, r.weights, "CLIPTextModel reference");
    auto out = model->forward(r.io["ids"]);
    EXPECT_TRUE(asg::testing::matches_reference(out.hidden, r.io["hidden"]));
    EXPECT_TRUE(asg::testing::matches_reference(out.pooled, r.io["pooled"]));
    EXPECT_FALSE(out.projected.defined());
    EXPECT_TRUE(asg::testing::matches_reference(model->forward(r.io["ids"], r.io["mask"]).hidden, r.io["hidden_masked"]));
    EXPECT_TRUE(asg::testing::matches_reference(model->forward(r.io["ids"], {}, 1).hidden, r.io["hidden_skip1"])) << "clip_skip = 1";
    std::filesystem::remove_all(r.dir);
  }
}

TEST(T5Encoder, MatchesTransformersReluAndGatedGeluWithAndWithoutMask) {
  torch::NoGradGuard no_grad;
  for (const bool small : {true, false}) {
    SCOPED_TRACE(small ? "small: relu, 32 buckets" : "deep: gated-gelu, 8 buckets up to 20");
    auto r = make_reference("t5", small ? "small" : "deep");
    asg::nn::T5EncoderOptions o{.vocab_size = 100, .d_model = small ? 32 : 48, .d_kv = small ? 8 : 16, .d_ff = small ? 64 : 80,
                                .layers = small ? 2 : 3, .heads = small ? 4 : 2, .relative_attention_num_buckets = small ? 32 : 8,
                                .relative_attention_max_distance = small ? 128 : 20, .gated = !small,
                                .activation = small ? asg::nn::TextActivation::Relu : asg::nn::TextActivation::GeluTanh};
    asg::nn::T5Encoder model(o);
    asg::nn::load_named_tensors(*model, r.weights, "T5EncoderModel reference");
    EXPECT_TRUE(asg::testing::matches_reference(model->forward(r.io["ids"]), r.io["hidden"]));
    EXPECT_TRUE(asg::testing::matches_reference(model->forward(r.io["ids"], r.io["mask"]), r.io["hidden_masked"]));
    std::filesystem::remove_all(r.dir);
  }
}

TEST(T5Encoder, RelativePositionBucketsAreT5s) {
  // By hand from T5's definition, 32 buckets up to 128: 16 per direction, positions 0-7 exact, then
  // 8 + floor(log(n/8)/log(16) * 8), capped at 15; keys after the query add 16.
  auto relative = torch::tensor({0, 1, 7, 8, 15, 16, 127, 128, 1000, -1, -8, -200}, torch::kLong);
  auto buckets = asg::nn::t5_relative_position_bucket(relative, 32, 128);
  std::vector<int64_t> expected{0, 17, 23, 24, 25, 26, 31, 31, 31, 1, 8, 15};
  EXPECT_EQ(std::vector<int64_t>(buckets.data_ptr<int64_t>(), buckets.data_ptr<int64_t>() + buckets.numel()), expected);
}

TEST(BertModel, MatchesChineseClipTextSideWithAndWithoutMask) {
  torch::NoGradGuard no_grad;
  for (const bool small : {true, false}) {
    SCOPED_TRACE(small ? "small: 2 layers, 4 heads, projection 16" : "deep: 3 layers, 6 heads, projection 24");
    auto r = make_reference("bert", small ? "small" : "deep");
    asg::nn::BertModel model(asg::nn::BertOptions{.vocab_size = 200, .hidden_size = small ? 32 : 48, .intermediate_size = small ? 64 : 96,
                                                  .layers = small ? 2 : 3, .heads = small ? 4 : 6, .max_positions = 40,
                                                  .projection_dim = small ? 16 : 24});
    asg::nn::load_named_tensors(*model, r.weights, "ChineseCLIPModel reference (text side)");
    EXPECT_TRUE(asg::testing::matches_reference(model->forward(r.io["ids"]).hidden, r.io["hidden"]));
    auto masked = model->forward(r.io["ids"], r.io["mask"]);
    EXPECT_TRUE(asg::testing::matches_reference(masked.hidden, r.io["hidden_masked"]));
    EXPECT_TRUE(asg::testing::matches_reference(masked.projected, r.io["projected_masked"])) << "get_text_features";
    std::filesystem::remove_all(r.dir);
  }
}
