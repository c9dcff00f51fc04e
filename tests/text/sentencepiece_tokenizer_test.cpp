// asg::SentencePieceTokenizer against transformers 5.23's T5Tokenizer: scripts/fixtures/sentencepiece_captions.py
// trains a small T5-style unigram model with SentencePiece 0.2 (Python) and writes transformers' ids for 1,000
// captions; here the C++ tokenizer loads that model and must give the same ids for every caption,
// without </s> (encode) and truncated and padded to 48 (tokenize).
#include "asg/text/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "asg/error.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

struct T5Reference {
  std::unique_ptr<asg::SentencePieceTokenizer> tokenizer;  // the fixture's model, loaded by the class under test
  int64_t vocab_size = 0, pad_id = 0, eos_id = 0, max_length = 0;
  std::vector<std::string> captions;
  std::vector<std::vector<int64_t>> encoded, ids, attention_mask;
};

// Runs the fixture script once for all the tests here.
const T5Reference& t5_reference() {
  static const T5Reference reference = [] {
    T5Reference r;
    const auto dir = asg::testing::make_temp_dir("sentencepiece-captions");
    if (!asg::testing::write_fixture("sentencepiece_captions.py", dir / "captions.json")) return r;
    nlohmann::json j;
    std::ifstream(dir / "captions.json") >> j;
    r.tokenizer = std::make_unique<asg::SentencePieceTokenizer>(asg::SentencePieceTokenizer::from_model_file(j["model"].get<std::string>()));
    r.vocab_size = j["vocab_size"];
    r.pad_id = j["pad_id"];
    r.eos_id = j["eos_id"];
    r.max_length = j["max_length"];
    r.captions = j["captions"].get<std::vector<std::string>>();
    r.encoded = j["encoded"].get<std::vector<std::vector<int64_t>>>();
    r.ids = j["ids"].get<std::vector<std::vector<int64_t>>>();
    r.attention_mask = j["attention_mask"].get<std::vector<std::vector<int64_t>>>();
    fs::remove_all(dir);
    return r;
  }();
  return reference;
}

std::string joined(const std::vector<int64_t>& ids) {
  std::string out;
  for (auto id : ids) out += std::to_string(id) + " ";
  return out;
}

TEST(SentencePieceTokenizer, GivesTransformersIdsOnAThousandCaptions) {
  const auto& ref = t5_reference();
  ASSERT_EQ(ref.captions.size(), 1000u) << "the Python reference environment (.venv) could not run sentencepiece and transformers";
  const auto& tok = *ref.tokenizer;
  EXPECT_EQ(tok.vocab_size(), ref.vocab_size);
  EXPECT_EQ(tok.pad_token(), ref.pad_id);
  EXPECT_EQ(tok.eos_token(), ref.eos_id);
  int mismatches = 0;
  for (size_t i = 0; i < ref.captions.size(); ++i) {
    const auto encoded = tok.encode(ref.captions[i]);
    const auto tokens = tok.tokenize(ref.captions[i], ref.max_length);
    const bool same = encoded == ref.encoded[i] && tokens.ids == ref.ids[i] && tokens.attention_mask() == ref.attention_mask[i];
    if (!same && ++mismatches <= 10)
      ADD_FAILURE() << "caption " << i << " \"" << ref.captions[i] << "\":\n  encode   ours         " << joined(encoded)
                    << "\n           transformers " << joined(ref.encoded[i]) << "\n  tokenize ours         " << joined(tokens.ids)
                    << "\n           transformers " << joined(ref.ids[i]) << "\n  mask     ours         " << joined(tokens.attention_mask())
                    << "\n           transformers " << joined(ref.attention_mask[i]);
  }
  EXPECT_EQ(mismatches, 0) << "of " << ref.captions.size() << " captions";
}

TEST(SentencePieceTokenizer, SpecialTokensTruncationAndPadding) {
  const auto& ref = t5_reference();
  ASSERT_TRUE(ref.tokenizer) << "the Python reference environment (.venv) could not run sentencepiece and transformers";
  const auto& tok = *ref.tokenizer;
  // T5's layout: <pad> 0, </s> 1, <unk> 2, the model's 400 pieces, then <extra_id_99> ... <extra_id_0>.
  EXPECT_EQ(tok.vocab_size(), 500);
  EXPECT_EQ(tok.pad_token(), 0);
  EXPECT_EQ(tok.eos_token(), 1);
  EXPECT_EQ(tok.unk_token(), 2);
  EXPECT_EQ(tok.extra_id_token(0), 499);
  EXPECT_EQ(tok.extra_id_token(99), 400);
  EXPECT_THROW(tok.extra_id_token(100), asg::Error);
  // Special tokens written in the text are those tokens; others ("<extra_id_100>", "</S>") are text.
  const auto cat = tok.encode("cat");
  std::vector<int64_t> expected = cat;
  expected.push_back(tok.extra_id_token(0));
  expected.insert(expected.end(), cat.begin(), cat.end());
  expected.push_back(tok.eos_token());
  EXPECT_EQ(tok.encode("cat<extra_id_0>cat</s>"), expected);
  EXPECT_EQ(tok.encode("cat <extra_id_0> cat </s>"), expected);
  EXPECT_GT(tok.encode("<extra_id_100>").size(), 1u);
  EXPECT_GT(tok.encode("</S>").size(), 1u);
  // Short: </s> then padding; long: cut, </s> last.
  const auto ids = tok.encode("a cat is waving hello");
  ASSERT_GE(ids.size(), 3u);
  const auto padded = tok.tokenize("a cat is waving hello", static_cast<int64_t>(ids.size()) + 3);
  EXPECT_EQ(padded.real_tokens, static_cast<int64_t>(ids.size()) + 1);
  expected = ids;
  expected.insert(expected.end(), {tok.eos_token(), tok.pad_token(), tok.pad_token()});
  EXPECT_EQ(padded.ids, expected);
  const auto cut = tok.tokenize("a cat is waving hello", 3);
  EXPECT_EQ(cut.ids, (std::vector<int64_t>{ids[0], ids[1], tok.eos_token()}));
  EXPECT_EQ(cut.attention_mask(), (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(tok.tokenize("a cat is waving hello", 3, false).ids, cut.ids);
  EXPECT_EQ(tok.tokenize("", 4, false).ids, (std::vector<int64_t>{tok.eos_token()}));
}

TEST(SentencePieceTokenizer, BadModelFilesNameTheFile) {
  const auto dir = asg::testing::make_temp_dir("sentencepiece-bad");
  const auto expect_config_error = [](const fs::path& path, const std::string& says) {
    try {
      asg::SentencePieceTokenizer::from_model_file(path);
      ADD_FAILURE() << path << " loaded";
    } catch (const asg::Error& e) {
      EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
      EXPECT_EQ(std::string(e.what()).rfind(path.string() + ": " + says, 0), 0u) << e.what();
    }
  };
  expect_config_error(dir / "missing.model", "no SentencePiece model here");
  expect_config_error(dir, "no SentencePiece model here");
  std::ofstream(dir / "text.model") << "this is not a protocol buffer, just some text\n";
  expect_config_error(dir / "text.model", "not a SentencePiece model");
  std::ofstream(dir / "empty.model").flush();
  expect_config_error(dir / "empty.model", "not a SentencePiece model");
  fs::remove_all(dir);
}

}  // namespace
