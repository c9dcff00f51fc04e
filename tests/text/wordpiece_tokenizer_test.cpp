// asg::WordPieceTokenizer against transformers 5.23's BertTokenizer: scripts/fixtures/wordpiece_captions.py builds a
// BERT-style vocab.txt and writes transformers' words and ids for 1,000 captions lower-cased and for 300 of them
// cased; here the same vocabulary must give the same words (the normalized text, split) and the same ids for every
// caption, without [CLS]/[SEP] (encode) and truncated and padded to 52 (tokenize).
#include "asg/text/wordpiece_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "asg/error.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

struct BertReference {
  std::string vocab_text;  // the fixture's vocab.txt, written again where a test needs it
  int64_t vocab_size = 0, max_length = 0;
  std::vector<std::string> captions;
  struct Ids {
    std::vector<std::vector<std::string>> words;  // what WordPiece is given
    std::vector<std::vector<int64_t>> encoded, ids, attention_mask;
  } lowered, cased;
};

// Runs the fixture script once for all the tests here.
const BertReference& bert_reference() {
  static const BertReference reference = [] {
    BertReference r;
    const auto dir = asg::testing::make_temp_dir("wordpiece-captions");
    if (!asg::testing::write_fixture("wordpiece_captions.py", dir / "captions.json")) return r;
    nlohmann::json j;
    std::ifstream(dir / "captions.json") >> j;
    std::ifstream vocab(j["vocab"].get<std::string>(), std::ios::binary);
    r.vocab_text.assign(std::istreambuf_iterator<char>(vocab), {});
    r.vocab_size = j["vocab_size"];
    r.max_length = j["max_length"];
    r.captions = j["captions"].get<std::vector<std::string>>();
    for (auto [ids, suffix] : {std::pair{&r.lowered, ""}, std::pair{&r.cased, "_cased"}}) {
      using Lists = std::vector<std::vector<int64_t>>;
      ids->words = j[std::string("words") + suffix].get<std::vector<std::vector<std::string>>>();
      ids->encoded = j[std::string("encoded") + suffix].get<Lists>();
      ids->ids = j[std::string("ids") + suffix].get<Lists>();
      ids->attention_mask = j[std::string("attention_mask") + suffix].get<Lists>();
    }
    fs::remove_all(dir);
    return r;
  }();
  return reference;
}

// The fixture's vocabulary, loaded by the class under test.
asg::WordPieceTokenizer reference_tokenizer(bool lower_case) {
  const auto dir = asg::testing::make_temp_dir("wordpiece-vocab");
  std::ofstream(dir / "vocab.txt", std::ios::binary) << bert_reference().vocab_text;
  auto tok = asg::WordPieceTokenizer::from_vocab_file(dir / "vocab.txt", lower_case);
  fs::remove_all(dir);
  return tok;
}

std::string quoted(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += "'" + w + "' ";
  return out;
}

std::string joined(const std::vector<int64_t>& ids) {
  std::string out;
  for (auto id : ids) out += std::to_string(id) + " ";
  return out;
}

// Every caption with a reference: the words, encode, tokenize and the attention mask as transformers gives them.
void expect_reference_ids(const asg::WordPieceTokenizer& tok, const BertReference::Ids& want) {
  const auto& ref = bert_reference();
  int mismatches = 0;
  for (size_t i = 0; i < want.ids.size(); ++i) {
    const auto& text = ref.captions[i];
    const auto words = tok.words(text);
    const auto encoded = tok.encode(text);
    const auto tokens = tok.tokenize(text, ref.max_length);
    if (words == want.words[i] && encoded == want.encoded[i] && tokens.ids == want.ids[i] &&
        tokens.attention_mask() == want.attention_mask[i])
      continue;
    if (++mismatches > 10) continue;
    ADD_FAILURE() << "caption " << i << " \"" << text << "\" (lower_case " << tok.lower_case() << "):\n  words    ours         "
                  << quoted(words) << "\n           transformers " << quoted(want.words[i])
                  << "\n  encode   ours         " << joined(encoded) << "\n           transformers " << joined(want.encoded[i])
                  << "\n  tokenize ours         " << joined(tokens.ids) << "\n           transformers " << joined(want.ids[i])
                  << "\n  mask     ours         " << joined(tokens.attention_mask()) << "\n           transformers "
                  << joined(want.attention_mask[i]);
  }
  EXPECT_EQ(mismatches, 0) << "of " << want.ids.size() << " captions";
}

TEST(WordPieceTokenizer, GivesTransformersIdsOnAThousandLowerCasedCaptions) {
  const auto& ref = bert_reference();
  ASSERT_EQ(ref.lowered.ids.size(), 1000u) << "the Python reference environment (.venv) could not run transformers";
  const auto tok = reference_tokenizer(true);
  EXPECT_EQ(tok.vocab_size(), ref.vocab_size);
  expect_reference_ids(tok, ref.lowered);
}

TEST(WordPieceTokenizer, GivesTransformersIdsOnCasedCaptions) {
  const auto& ref = bert_reference();
  ASSERT_EQ(ref.cased.ids.size(), 300u) << "the Python reference environment (.venv) could not run transformers";
  expect_reference_ids(reference_tokenizer(false), ref.cased);
}

// A vocabulary written by the test, for the cases that need exact ids.
fs::path write_vocab(const fs::path& dir, const std::string& text) {
  std::ofstream(dir / "vocab.txt", std::ios::binary) << text;
  return dir / "vocab.txt";
}

TEST(WordPieceTokenizer, SplitsNormalizesAndTruncatesAsBertDoes) {
  const auto dir = asg::testing::make_temp_dir("wordpiece-small");
  // ids:                         0     1     2     3     4  5  6   7      8      9    10   11   12   13      14
  const auto path = write_vocab(dir, "[PAD]\n[UNK]\n[CLS]\n[SEP]\ncafe\nla\n!\nplay\n##ing\n##s\n一\n只\n，\n[MASK]\nunicorn\r\n");
  const auto tok = asg::WordPieceTokenizer::from_vocab_file(path);
  EXPECT_EQ(tok.vocab_size(), 15);
  EXPECT_EQ(tok.mask_token(), 13);
  // Lower case, accents off, punctuation and ideographs apart, "##" pieces, [UNK] for a word that does not split.
  EXPECT_EQ(tok.words("Café\tLA!playings 一只，x"), (std::vector<std::string>{"cafe", "la", "!", "playings", "一", "只", "，", "x"}));
  EXPECT_EQ(tok.encode("Café\tLA!playings 一只，x"), (std::vector<int64_t>{4, 5, 6, 7, 8, 9, 10, 11, 12, 1}));
  EXPECT_EQ(tok.encode("UNICORN"), (std::vector<int64_t>{14}));  // "unicorn\r" is the token "unicorn"
  // Special tokens as written; "[cls]" and "[ CLS ]" are text.
  EXPECT_EQ(tok.encode("[CLS]cafe[MASK] [SEP]"), (std::vector<int64_t>{2, 4, 13, 3}));
  EXPECT_EQ(tok.encode("[cls]"), (std::vector<int64_t>{1, 1, 1}));
  // Control and zero-width characters go; other white space splits.
  EXPECT_EQ(tok.words("ca\u200bfe\x07 la\u3000la"), (std::vector<std::string>{"cafe", "la", "la"}));
  // Cased: no lower-casing, accents kept.
  const auto cased = asg::WordPieceTokenizer::from_vocab_file(path, false);
  EXPECT_EQ(cased.words("Café LA"), (std::vector<std::string>{"Café", "LA"}));
  EXPECT_EQ(cased.encode("Café la"), (std::vector<int64_t>{1, 5}));
  // A word over 100 characters is [UNK] even when it splits.
  std::vector<int64_t> play_and_96_s{7};
  play_and_96_s.resize(97, 9);
  EXPECT_EQ(tok.encode("play" + std::string(96, 's')), play_and_96_s);  // 100 characters
  EXPECT_EQ(tok.encode("play" + std::string(97, 's')), (std::vector<int64_t>{1}));
  // [CLS] ... [SEP], cut with [SEP] last, padded.
  const auto padded = tok.tokenize("cafe la", 6);
  EXPECT_EQ(padded.ids, (std::vector<int64_t>{2, 4, 5, 3, 0, 0}));
  EXPECT_EQ(padded.real_tokens, 4);
  EXPECT_EQ(padded.attention_mask(), (std::vector<int64_t>{1, 1, 1, 1, 0, 0}));
  EXPECT_EQ(tok.tokenize("cafe la cafe la", 4).ids, (std::vector<int64_t>{2, 4, 5, 3}));
  EXPECT_EQ(tok.tokenize("cafe la", 6, false).ids, (std::vector<int64_t>{2, 4, 5, 3}));
  EXPECT_EQ(tok.tokenize("", 2).ids, (std::vector<int64_t>{2, 3}));
  // Without [MASK] in the file, transformers adds it after the last token.
  const auto no_mask = asg::WordPieceTokenizer::from_vocab_file(write_vocab(dir, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nla\n"));
  EXPECT_EQ(no_mask.vocab_size(), 6);
  EXPECT_EQ(no_mask.encode("la [MASK]"), (std::vector<int64_t>{4, 5}));
  fs::remove_all(dir);
}

TEST(WordPieceTokenizer, BadVocabularyFilesNameTheFileAndLine) {
  const auto dir = asg::testing::make_temp_dir("wordpiece-bad");
  const auto expect_config_error = [](const fs::path& path, const std::string& message) {
    try {
      asg::WordPieceTokenizer::from_vocab_file(path);
      ADD_FAILURE() << path << " loaded";
    } catch (const asg::Error& e) {
      EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
      EXPECT_EQ(std::string(e.what()), message);
    }
  };
  const fs::path vocab = dir / "vocab.txt";
  expect_config_error(dir / "missing.txt", (dir / "missing.txt").string() + ": no WordPiece vocabulary here (BERT's is vocab.txt, one token per line)");
  write_vocab(dir, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nla\nca\nla \n");
  expect_config_error(vocab, vocab.string() + ":7: the token 'la' is already on line 5 (each token once: its line is its id)");
  write_vocab(dir, "[PAD]\n[UNK]\n[CLS]\nla\n");
  expect_config_error(vocab, vocab.string() + ": no [SEP] token; BERT's vocabulary has [PAD], [UNK], [CLS], [SEP] and [MASK]");
  write_vocab(dir, "[PAD]\n[UNK]\n[CLS]\n[SEP]\nl\xFF" "a\n");
  expect_config_error(vocab, vocab.string() + ":5: the line is not UTF-8 text");
  write_vocab(dir, "");
  expect_config_error(vocab, vocab.string() + ": no [PAD] token; BERT's vocabulary has [PAD], [UNK], [CLS], [SEP] and [MASK]");
  fs::remove_all(dir);
}

}  // namespace
