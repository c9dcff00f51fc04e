#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <sstream>

#include "asg/kinds/text_encoder.h"
#include "plugin_under_test.h"

using asg::testing::make_under_test;

TEST(WordEmbedding, ShapesMaskAndPooling) {
  torch::manual_seed(0);
  auto enc = make_under_test<asg::TextEncoder>("word_embedding", {{"dim", int64_t{8}}});
  auto e = enc->encode({"a red star", "a blue circle jumping from left to right"});
  EXPECT_EQ(enc->dim(), 8);
  // 3 words + 2 bigrams; 8 words + 7 bigrams
  EXPECT_EQ(e.tokens.sizes(), (std::vector<int64_t>{2, 15, 8}));
  EXPECT_EQ(e.mask.sum(1)[0].item<int64_t>(), 5);
  EXPECT_EQ(e.mask.sum(1)[1].item<int64_t>(), 15);
  // Pooled = mean over real tokens only.
  auto expect = e.tokens[0].narrow(0, 0, 5).mean(0);
  EXPECT_TRUE(torch::allclose(e.pooled[0], expect));
}

TEST(WordEmbedding, EncodingIsCaseAndPunctuationInsensitiveAndBatchIndependent) {
  torch::manual_seed(0);
  auto enc = make_under_test<asg::TextEncoder>("word_embedding", {});
  auto a = enc->encode({"A Red, STAR!"});
  auto b = enc->encode({"a red star", "something much longer than the other caption here"});
  EXPECT_TRUE(torch::allclose(a.pooled[0], b.pooled[0]));
}

TEST(WordEmbedding, WordOrderMattersThroughBigramsOnly) {
  torch::manual_seed(0);
  auto bigrams = make_under_test<asg::TextEncoder>("word_embedding", {});
  auto a = bigrams->encode({"a red star jumping from left to right", "a red star jumping from right to left"});
  EXPECT_GT((a.pooled[0] - a.pooled[1]).abs().max().item<double>(), 1e-4);
  auto words = make_under_test<asg::TextEncoder>("word_embedding", {{"ngrams", int64_t{1}}});
  auto b = words->encode({"a red star jumping from left to right", "a red star jumping from right to left"});
  EXPECT_TRUE(torch::allclose(b.pooled[0], b.pooled[1]));  // a bag of words cannot tell them apart
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
  // Every word and bigram of every synthetic sticker caption must get its own embedding row. Tokens come
  // back in order: the words, then the bigrams.
  torch::manual_seed(0);
  auto enc = make_under_test<asg::TextEncoder>("word_embedding", {});
  std::map<std::string, std::vector<float>> rows;
  for (const char* colour : {"red", "green", "blue", "yellow", "purple", "orange"})
    for (const char* shape : {"circle", "square", "triangle", "star"})
      for (const char* dir : {"left to right", "right to left", "bottom to top", "top to bottom"}) {
        std::string caption = std::string("a ") + colour + " " + shape + " jumping from " + dir;
        std::vector<std::string> w;
        std::istringstream in(caption);
        for (std::string x; in >> x;) w.push_back(x);
        std::vector<std::string> terms(w);
        for (size_t i = 0; i + 1 < w.size(); ++i) terms.push_back(w[i] + " " + w[i + 1]);
        auto tokens = enc->encode({caption}).tokens[0].contiguous();
        ASSERT_EQ(tokens.size(0), static_cast<int64_t>(terms.size()));
        for (size_t i = 0; i < terms.size(); ++i) {
          auto row = tokens[i];
          rows[terms[i]] = std::vector<float>(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
        }
      }
  std::set<std::vector<float>> distinct;
  for (const auto& [term, row] : rows) distinct.insert(row);
  EXPECT_GT(rows.size(), 60u);
  EXPECT_EQ(distinct.size(), rows.size());
}
