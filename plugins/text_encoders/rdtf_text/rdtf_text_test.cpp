// rdtf_text is Chinese-CLIP's tokens followed by MLP(T5's tokens): checked against asg::nn's two towers (each
// checked against transformers) holding the same weights, and only the MLP learns.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/kinds/text_encoder.h"
#include "asg/nn/bert_model.h"
#include "asg/nn/module_state.h"
#include "asg/nn/t5_encoder.h"
#include "asg/text/wordpiece_tokenizer.h"
#include "plugin_under_test.h"
#include "test_paths.h"

using asg::testing::make_under_test;

namespace {
const std::string vocabulary = (asg::testing::source_dir() / "tests/fixtures/wordpiece_vocab.txt").string();

std::map<std::string, asg::ParamValue> small_rdtf() {
  return {{"clip_vocabulary", vocabulary}, {"t5_vocabulary", vocabulary}, {"clip_context_length", int64_t{12}},
          {"t5_context_length", int64_t{10}}, {"clip_vocab_size", int64_t{100}}, {"clip_hidden_size", int64_t{32}},
          {"clip_intermediate_size", int64_t{64}}, {"clip_layers", int64_t{2}}, {"clip_heads", int64_t{4}},
          {"clip_max_positions", int64_t{64}}, {"t5_vocab_size", int64_t{100}}, {"t5_d_model", int64_t{24}}, {"t5_d_kv", int64_t{8}},
          {"t5_d_ff", int64_t{48}}, {"t5_layers", int64_t{2}}, {"t5_heads", int64_t{3}}, {"mlp_hidden", int64_t{40}}};
}
}  // namespace

TEST(RdtfText, IsChineseClipTokensThenMlpOfT5TokensAndOnlyTheMlpLearns) {
  torch::manual_seed(0);
  // The towers on their own (asg::nn's, each checked against transformers), at random weights.
  asg::nn::BertModel clip(asg::nn::BertOptions{.vocab_size = 100, .hidden_size = 32, .intermediate_size = 64, .layers = 2, .heads = 4,
                                               .max_positions = 64});
  asg::nn::T5Encoder t5(asg::nn::T5EncoderOptions{.vocab_size = 100, .d_model = 24, .d_kv = 8, .d_ff = 48, .layers = 2, .heads = 3});
  auto rdtf = make_under_test<asg::TextEncoder>("rdtf_text", small_rdtf());

  // What `asg weights merge` gives: each tower's tensors under its prefix; the MLP keeps its initialisation.
  std::map<std::string, torch::Tensor> merged;
  for (const auto& item : clip->named_parameters()) merged["chinese_clip." + item.key()] = item.value().detach();
  for (const auto& item : t5->named_parameters()) merged["t5." + item.key()] = item.value().detach();
  std::vector<std::string> mlp_names;
  for (const auto& item : rdtf->named_parameters())
    if (item.key().rfind("t5_mlp.", 0) == 0) mlp_names.push_back(item.key());
  ASSERT_EQ(mlp_names.size(), 4u);
  asg::nn::load_named_tensors(*rdtf, merged, "the two towers", mlp_names);

  const std::vector<std::string> captions = {"a happy cat waving hello", "", "开心的小狗在跳舞"};
  const auto tokenizer = asg::WordPieceTokenizer::from_vocab_file(vocabulary);
  auto ids_of = [&](int64_t length) {
    auto ids = torch::empty({3, length}, torch::kLong), real = torch::zeros({3, length}, torch::kBool);
    for (int64_t b = 0; b < 3; ++b) {
      const auto t = tokenizer.tokenize(captions[static_cast<size_t>(b)], length);
      ids[b].copy_(torch::tensor(t.ids, torch::kLong));
      real[b].narrow(0, 0, t.real_tokens).fill_(true);
    }
    return std::pair{ids, real};
  };
  auto [clip_ids, clip_real] = ids_of(12);
  auto [t5_ids, t5_real] = ids_of(10);
  torch::Tensor clip_tokens, t5_tokens;
  {
    torch::NoGradGuard no_grad;
    clip_tokens = clip->forward(clip_ids, clip_real).hidden;
    t5_tokens = t5->forward(t5_ids, t5_real);
  }

  auto e = rdtf->encode(captions);
  EXPECT_EQ(rdtf->dim(), 32);
  ASSERT_EQ(e.tokens.sizes(), (std::vector<int64_t>{3, 22, 32}));
  EXPECT_TRUE(torch::allclose(e.tokens.narrow(1, 0, 12), clip_tokens, 1e-6, 1e-6)) << "Chinese-CLIP's tokens first";
  auto mlp = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(rdtf->named_children()["t5_mlp"]);
  ASSERT_TRUE(mlp);
  EXPECT_TRUE(torch::allclose(e.tokens.narrow(1, 12, 10), mlp->forward(t5_tokens), 1e-6, 1e-6)) << "then the MLP of T5's";
  EXPECT_TRUE(torch::allclose(e.pooled, clip_tokens.select(1, 0), 1e-6, 1e-6)) << "Chinese-CLIP's [CLS] state";
  EXPECT_TRUE(e.mask.all().item<bool>());

  // Gradients reach the MLP only.
  EXPECT_FALSE(rdtf->frozen());
  e.tokens.square().sum().backward();
  for (const auto& item : rdtf->named_parameters()) {
    const bool is_mlp = item.key().rfind("t5_mlp.", 0) == 0;
    EXPECT_EQ(item.value().grad().defined(), is_mlp) << item.key();
  }
}

TEST(RdtfText, RefusesAVocabularyLargerThanATowersEmbedding) {
  auto params = small_rdtf();
  params["t5_vocab_size"] = int64_t{50};
  try {
    make_under_test<asg::TextEncoder>("rdtf_text", params);
    FAIL() << "a 50-row T5 embedding for a 92-token vocabulary was accepted";
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("t5_vocab_size = 50 is smaller than the tokenizer's vocabulary (92 ids"), std::string::npos) << e.what();
  }
}
