#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "asg/kinds/text_encoder.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

TEST(WordEmbedding, ShapesMaskAndPooling) {
  torch::manual_seed(0);
  auto enc = make_under_test<asg::TextEncoder>("word_embedding", {{"dim", int64_t{8}}});
  auto e = enc->encode({"a red star", "a blue circle jumping from left to right"});
  EXPECT_EQ(enc->dim(), 8);
  EXPECT_EQ(e.tokens.sizes(), (std::vector<int64_t>{2, 8, 8}));
  EXPECT_EQ(e.mask.sum(1)[0].item<int64_t>(), 3);
  EXPECT_EQ(e.mask.sum(1)[1].item<int64_t>(), 8);
  // Pooled = mean over real tokens only.
  auto expect = e.tokens[0].narrow(0, 0, 3).mean(0);
  EXPECT_TRUE(torch::allclose(e.pooled[0], expect));
}

TEST(WordEmbedding, EncodingIsCaseAndPunctuationInsensitiveAndBatchIndependent) {
  torch::manual_seed(0);
  auto enc = make_under_test<asg::TextEncoder>("word_embedding", {});
  auto a = enc->encode({"A Red, STAR!"});
  auto b = enc->encode({"a red star", "something much longer than the other caption here"});
  EXPECT_TRUE(torch::allclose(a.pooled[0], b.pooled[0]));
}

TEST(WordEmbedding, EmptyCaptionIsTheLearnedNullEmbedding) {
  torch::manual_seed(0);
  auto enc = make_under_test<asg::TextEncoder>("word_embedding", {});
  auto e = enc->encode({"", "a red star"});
  EXPECT_EQ(e.mask[0].sum().item<int64_t>(), 0);
  auto params = enc->named_parameters();
  EXPECT_TRUE(torch::equal(e.pooled[0], params["null"]));
  // Gradients reach the null embedding (it is learned for classifier-free guidance).
  e.pooled[0].sum().backward();
  EXPECT_TRUE(params["null"].grad().defined());
}

TEST(WordEmbedding, SyntheticVocabularyHasNoHashCollisionsAtDefaultBuckets) {
  // Every word the synthetic sticker captions use must get its own embedding row.
  std::vector<std::string> words = {"a",      "jumping", "from",   "to",     "left",   "right",    "top",   "bottom",
                                    "red",    "green",   "blue",   "yellow", "purple", "orange",   "circle", "square",
                                    "triangle", "star"};
  torch::manual_seed(0);
  auto enc = make_under_test<asg::TextEncoder>("word_embedding", {});
  std::set<std::vector<float>> rows;
  for (const auto& w : words) {
    auto t = enc->encode({w}).pooled[0].contiguous();
    rows.insert(std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()));
  }
  EXPECT_EQ(rows.size(), words.size());
}
