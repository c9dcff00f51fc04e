// clip_text end to end against open_clip's tokenizer and transformers' CLIPTextModel on the same captions
// (scripts/fixtures/clip_text_reference.py), and its refusals.
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
std::map<std::string, asg::ParamValue> small_tower(const std::string& merges) {
  return {{"merges", merges}, {"context_length", int64_t{16}}, {"max_positions", int64_t{16}}, {"hidden_size", int64_t{32}},
          {"intermediate_size", int64_t{64}}, {"layers", int64_t{2}}, {"heads", int64_t{4}}};
}
}  // namespace

TEST(ClipText, EncodesCaptionsAsOpenClipsTokenizerAndTransformersCLIPTextModel) {
  const auto dir = asg::testing::make_temp_dir("clip-text-reference");
  ASSERT_TRUE(asg::testing::write_fixture("clip_text_reference.py", dir)) << "the Python reference environment (.venv) could not run";
  std::string bpe;
  std::getline(std::ifstream(dir / "bpe_path.txt"), bpe);
  const auto captions = nlohmann::json::parse(std::ifstream(dir / "captions.json")).get<std::vector<std::string>>();
  auto io = asg::nn::read_safetensors(dir / "io.safetensors").tensors;

  auto encoder = make_under_test<asg::TextEncoder>("clip_text", small_tower(bpe));
  asg::nn::load_named_tensors(*encoder, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "CLIPTextModel reference");
  EXPECT_TRUE(encoder->frozen());
  for (const auto& p : encoder->parameters()) EXPECT_FALSE(p.requires_grad());
  auto e = encoder->encode(captions);
  EXPECT_EQ(encoder->dim(), 32);
  EXPECT_TRUE(asg::testing::matches_reference(e.tokens, io["hidden"])) << "last_hidden_state";
  EXPECT_TRUE(asg::testing::matches_reference(e.pooled, io["pooled"])) << "pooler_output";
  EXPECT_TRUE(e.mask.all().item<bool>()) << "diffusers' UNets attend to every position, padding included";

  // mask_padding: positions after <|endoftext|> are padding; the embedding itself is unchanged.
  auto params = small_tower(bpe);
  params["mask_padding"] = true;
  auto masking = make_under_test<asg::TextEncoder>("clip_text", params);
  asg::nn::load_named_tensors(*masking, asg::nn::read_safetensors(dir / "weights.safetensors").tensors, "CLIPTextModel reference");
  auto m = masking->encode(captions);
  EXPECT_TRUE(torch::equal(m.mask, io["ids"].ne(0)));  // <|startoftext|> ... <|endoftext|>; "!" (id 0) pads
  EXPECT_TRUE(torch::equal(m.tokens, e.tokens));
  std::filesystem::remove_all(dir);
}

TEST(ClipText, RefusesAVocabularySmallerThanTheTokenizersAndContextBeyondPositions) {
  const auto merges = (asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt").string();
  auto params = small_tower(merges);
  params["vocab_size"] = int64_t{100};
  try {
    make_under_test<asg::TextEncoder>("clip_text", params);
    FAIL() << "a 100-row embedding for a larger vocabulary was accepted";
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab_size = 100 is smaller than the tokenizer's vocabulary"), std::string::npos) << e.what();
  }
  params = small_tower(merges);
  params["context_length"] = int64_t{77};
  EXPECT_THROW(make_under_test<asg::TextEncoder>("clip_text", params), asg::Error);
}
