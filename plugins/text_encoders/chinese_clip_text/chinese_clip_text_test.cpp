// chinese_clip_text end to end against transformers' BertTokenizer and ChineseCLIPModel's text side on the same
// captions, with the tokenizer's padding mask (scripts/fixtures/text_encoder_pipeline_reference.py
// --model chinese_clip), and its refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "asg/error.h"
#include "asg/kinds/text_encoder.h"
#include "asg/nn/module_state.h"
#include "asg/nn/safetensors.h"
#include "plugin_under_test.h"
#include "reference_match.h"
#include "test_paths.h"

using asg::testing::make_under_test;

namespace {
std::map<std::string, asg::ParamValue> small_tower(const std::filesystem::path& dir, int64_t vocab_size) {
  return {{"vocabulary", (dir / "vocab.txt").string()}, {"context_length", int64_t{24}}, {"vocab_size", vocab_size},
          {"hidden_size", int64_t{32}}, {"intermediate_size", int64_t{64}}, {"layers", int64_t{2}}, {"heads", int64_t{4}},
          {"max_positions", int64_t{40}}};
}
}  // namespace

TEST(ChineseClipText, EncodesCaptionsAsTransformersBertTokenizerAndChineseCLIPModel) {
  const auto dir = asg::testing::make_temp_dir("chinese-clip-text-reference");
  ASSERT_TRUE(asg::testing::write_fixture("text_encoder_pipeline_reference.py", dir, "--model chinese_clip"))
      << "the Python reference environment (.venv) could not run";
  const auto captions = nlohmann::json::parse(std::ifstream(dir / "captions.json")).get<std::vector<std::string>>();
  auto io = asg::nn::read_safetensors(dir / "io.safetensors").tensors;
  const int64_t vocab = io["vocab_size"].item<int64_t>();

  auto encoder = make_under_test<asg::TextEncoder>("chinese_clip_text", small_tower(dir, vocab));
  asg::nn::load_named_tensors(*encoder, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "ChineseCLIPModel reference");
  EXPECT_TRUE(encoder->frozen());
  auto e = encoder->encode(captions);
  EXPECT_TRUE(asg::testing::matches_reference(e.tokens, io["hidden"])) << "last_hidden_state with the tokenizer's attention mask";
  EXPECT_TRUE(asg::testing::matches_reference(e.pooled, io["hidden"].select(1, 0))) << "the [CLS] state";
  EXPECT_TRUE(e.mask.all().item<bool>());

  auto params = small_tower(dir, vocab);
  params["mask_padding"] = true;
  auto masking = make_under_test<asg::TextEncoder>("chinese_clip_text", params);
  EXPECT_TRUE(torch::equal(masking->encode(captions).mask, io["mask"])) << "[CLS] ... [SEP]";

  params = small_tower(dir, vocab);
  params["context_length"] = int64_t{41};
  try {
    make_under_test<asg::TextEncoder>("chinese_clip_text", params);
    FAIL() << "a context beyond the position embeddings was accepted";
  } catch (const asg::Error& error) {
    EXPECT_NE(std::string(error.what()).find("context_length = 41 exceeds max_positions = 40"), std::string::npos) << error.what();
  }
  std::filesystem::remove_all(dir);
}
