// CLIP's BPE tokenizer against token ids computed by scripts/fixtures/clip_bpe_reference.py, a standard-
// library re-implementation of OpenAI's simple_tokenizer.py, from the merges fixture that script learned
// (tests/fixtures/clip_bpe_merges.txt, 60 merges). Rerun the script to regenerate both.
#include "asg/text/clip_tokenizer.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "asg/error.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

fs::path fixture() { return asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt"; }

TEST(ClipTokenizer, GivesTheReferenceIdsOnTheFixture) {
  const auto tok = asg::ClipTokenizer::from_merges_file(fixture());
  EXPECT_EQ(tok.vocab_size(), 574);  // 256 bytes, 256 end-of-word bytes, 60 merges, 2 special tokens
  EXPECT_EQ(tok.start_token(), 572);
  EXPECT_EQ(tok.end_token(), 573);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> cases = {
      {"a red star moves left to right", {320, 551, 528, 549, 547, 555, 550}},
      {"Hello,   World!!\n it's 2024", {544, 267, 86, 78, 81, 75, 323, 0, 256, 525, 518, 273, 271, 273, 275}},
      {"Fish &amp; chips &#39;n&#39; stars", {69, 72, 82, 327, 261, 66, 71, 72, 79, 338, 262, 333, 262, 552}},
      {"Café ÜBER naïve 汉字 hearts", {570, 127, 120, 565, 77, 562, 162, 109, 231, 161, 255, 501, 541, 83, 338}},
      {"snake_case-word 🙂!", {82, 77, 64, 74, 324, 318, 66, 64, 82, 324, 268, 86, 78, 81, 323, 172, 253, 247, 224, 256}},
      {"", {}},
  };
  for (const auto& [text, ids] : cases) EXPECT_EQ(tok.encode(text), ids) << text;
}

TEST(ClipTokenizer, TokenizePadsTruncatesAndDecodes) {
  const auto tok = asg::ClipTokenizer::from_merges_file(fixture());
  const auto ids = tok.encode("a red star moves left to right");
  auto padded = tok.tokenize("a red star moves left to right", 12);
  ASSERT_EQ(padded.size(), 12u);
  EXPECT_EQ(padded.front(), tok.start_token());
  EXPECT_EQ(std::vector<int64_t>(padded.begin() + 1, padded.begin() + 1 + static_cast<long>(ids.size())), ids);
  EXPECT_EQ(padded[ids.size() + 1], tok.end_token());
  for (size_t i = ids.size() + 2; i < 12; ++i) EXPECT_EQ(padded[i], 0);
  // Too long: cut, the end token last (clip.tokenize(truncate=True)), or refused.
  const auto cut = tok.tokenize("a red star moves left to right", 5);
  EXPECT_EQ(cut, (std::vector<int64_t>{tok.start_token(), ids[0], ids[1], ids[2], tok.end_token()}));
  EXPECT_THROW(tok.tokenize("a red star moves left to right", 5, false), asg::Error);
  EXPECT_EQ(tok.decode(padded), "a red star moves left to right");
  EXPECT_EQ(tok.decode(tok.encode("Café ÜBER naïve 汉字 hearts")), "café über naïve 汉字 hearts");
}

TEST(ClipTokenizer, BadMergesFilesNameTheFileAndLine) {
  const fs::path dir = fs::temp_directory_path() / ("asg-clip-bpe-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "bad.txt") << "#version: 0.2\nt h\nthree parts here\n";
  try {
    asg::ClipTokenizer::from_merges_file(dir / "bad.txt");
    ADD_FAILURE();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_EQ(std::string(e.what()), (dir / "bad.txt").string() +
                                         ":3: 'three parts here' is not a merge (valid: two symbols separated by one space, e.g. \"t h\")");
  }
  EXPECT_THROW(asg::ClipTokenizer::from_merges_file(dir / "missing.txt"), asg::Error);
  // The first `max_merges` only, as OpenAI reads its file.
  EXPECT_EQ(asg::ClipTokenizer::from_merges_file(fixture(), 10).vocab_size(), 512 + 10 + 2);
  fs::remove_all(dir);
}

}  // namespace

namespace {
// What the reference gives: 1,000 captions and open_clip.tokenize's ids for each (scripts/fixtures/clip_tokenizer_captions.py).
struct OpenClipReference {
  std::string vocabulary;
  std::vector<std::string> captions;
  std::vector<std::vector<int64_t>> ids;
};
OpenClipReference open_clip_reference() {
  const auto dir = asg::testing::make_temp_dir("clip-captions");
  OpenClipReference r;
  if (!asg::testing::write_fixture("clip_tokenizer_captions.py", dir / "captions.json")) return r;
  nlohmann::json j;
  std::ifstream(dir / "captions.json") >> j;
  r.vocabulary = j["vocabulary"];
  r.captions = j["captions"].get<std::vector<std::string>>();
  r.ids = j["ids"].get<std::vector<std::vector<int64_t>>>();
  fs::remove_all(dir);
  return r;
}
}  // namespace

TEST(ClipTokenizer, GivesOpenClipsIdsOnAThousandCaptionsWithItsOwnVocabulary) {
  // English sticker captions, Chinese, emoji and odd Unicode, with the BPE vocabulary open_clip ships.
  const auto ref = open_clip_reference();
  ASSERT_EQ(ref.captions.size(), 1000u) << "the Python reference environment (.venv) could not run open_clip";
  const auto tok = asg::ClipTokenizer::from_merges_file(ref.vocabulary);
  EXPECT_EQ(tok.vocab_size(), 49408);
  int mismatches = 0;
  for (size_t i = 0; i < ref.captions.size(); ++i) {
    const auto ids = tok.tokenize(ref.captions[i], 77, true);
    if (ids != ref.ids[i] && ++mismatches <= 10) {
      std::string got, want;
      for (auto id : ids) got += std::to_string(id) + " ";
      for (auto id : ref.ids[i]) want += std::to_string(id) + " ";
      ADD_FAILURE() << "caption " << i << " \"" << ref.captions[i] << "\":\n  ours     " << got << "\n  open_clip " << want;
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << ref.captions.size() << " captions";
}
