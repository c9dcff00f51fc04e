// t5_text end to end against transformers' T5Tokenizer and T5EncoderModel on the same captions, with the
// tokenizer's padding mask (scripts/fixtures/text_encoder_pipeline_reference.py --model t5), and its refusals.
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
std::map<std::string, asg::ParamValue> small_encoder(const std::filesystem::path& dir, int64_t vocab_size) {
  return {{"tokenizer", std::string("sentencepiece")}, {"vocabulary", (dir / "spiece.model").string()}, {"context_length", int64_t{20}},
          {"vocab_size", vocab_size}, {"d_model", int64_t{32}}, {"d_kv", int64_t{8}}, {"d_ff", int64_t{48}}, {"layers", int64_t{2}},
          {"heads", int64_t{4}}, {"feed_forward_proj", std::string("gated-gelu")}};
}
}  // namespace

TEST(T5Text, EncodesCaptionsAsTransformersT5TokenizerAndT5EncoderModel) {
  const auto dir = asg::testing::make_temp_dir("t5-text-reference");
  ASSERT_TRUE(asg::testing::write_fixture("text_encoder_pipeline_reference.py", dir, "--model t5"))
      << "the Python reference environment (.venv) could not run";
  const auto captions = nlohmann::json::parse(std::ifstream(dir / "captions.json")).get<std::vector<std::string>>();
  auto io = asg::nn::read_safetensors(dir / "io.safetensors").tensors;
  const int64_t vocab = io["vocab_size"].item<int64_t>();

  auto encoder = make_under_test<asg::TextEncoder>("t5_text", small_encoder(dir, vocab));
  asg::nn::load_named_tensors(*encoder, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "T5EncoderModel reference");
  auto e = encoder->encode(captions);
  EXPECT_EQ(encoder->dim(), 32);
  EXPECT_TRUE(asg::testing::matches_reference(e.tokens, io["hidden"])) << "last_hidden_state with the tokenizer's attention mask";
  EXPECT_TRUE(e.mask.all().item<bool>());
  // The pooled vector: the mean over the text's tokens (</s> included), padding left out.
  auto real = io["mask"].to(torch::kFloat).unsqueeze(-1);
  EXPECT_TRUE(asg::testing::matches_reference(e.pooled, (io["hidden"] * real).sum(1) / real.sum(1)));

  auto params = small_encoder(dir, vocab);
  params["mask_padding"] = true;
  auto masking = make_under_test<asg::TextEncoder>("t5_text", params);
  EXPECT_TRUE(torch::equal(masking->encode(captions).mask, io["mask"])) << "the tokenizer's mask, </s> included";

  params = small_encoder(dir, vocab);
  params["vocab_size"] = int64_t{10};
  try {
    make_under_test<asg::TextEncoder>("t5_text", params);
    FAIL() << "a 10-row embedding for a larger vocabulary was accepted";
  } catch (const asg::Error& error) {
    EXPECT_NE(std::string(error.what()).find("vocab_size = 10 is smaller than the tokenizer's vocabulary"), std::string::npos) << error.what();
  }
  std::filesystem::remove_all(dir);
}
