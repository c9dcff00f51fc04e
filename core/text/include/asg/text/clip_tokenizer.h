// CLIP's byte-level BPE tokenizer (Radford et al. 2021; OpenAI's clip/simple_tokenizer.py), in C++,
// for text encoders and metrics that run CLIP models exported to TorchScript. No torch.
//
// What it does, in OpenAI's order:
// 1. Clean, as open_clip does (ftfy.fix_text, then html.unescape twice, whitespace, lower case): ftfy's
//    fixes at its default settings (HTML entities unless the text has a '<', C1 controls as Windows-1252,
//    Latin ligatures, half- and full-width forms, curly quotes, line breaks, terminal escapes and control
//    characters removed, NFC), repeated until nothing changes; then HTML entities unescaped twice (the
//    common named ones and all numeric ones), runs of whitespace collapsed to one space, trimmed,
//    lower-cased (Unicode, ICU's root locale). Not done: ftfy's mojibake repair (fix_encoding), so text
//    that is mis-decoded UTF-8 ("cafÃ©") is tokenized as written. Text must be valid UTF-8.
//    tests/text/clip_tokenizer_test.cpp checks identical ids with open_clip on 1,000 captions.
// 2. Split with CLIP's pattern: <|startoftext|>, <|endoftext|>, the contractions 's 't 're 've 'm 'll 'd,
//    runs of letters (\p{L}+), single digits (\p{N}), runs of anything else but spaces (ICU regex).
// 3. Each piece's UTF-8 bytes map to printable characters (GPT-2's bytes_to_unicode), the last one
//    marked end-of-word ("</w>"), and the merges are applied lowest rank first.
// Ids: the 256 byte characters, the same with "</w>", one per merge, then <|startoftext|> and
// <|endoftext|> (49406 and 49407 with OpenAI's 48,894 merges: vocabulary 49408).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace asg {

class ClipTokenizer {
 public:
  // OpenAI's merges file (bpe_simple_vocab_16e6.txt, or the .gz they ship): a header line, then one
  // merge per line, "first second". Like OpenAI, only the first `max_merges` merges are used (48,894 of
  // that file's; 0 = all). asg::Error(Config) naming the file and line for a missing file or a bad line.
  static ClipTokenizer from_merges_file(const std::filesystem::path& merges, int64_t max_merges = 48894);
  explicit ClipTokenizer(std::vector<std::pair<std::string, std::string>> merges);

  // BPE ids of the cleaned text, without the start and end tokens.
  std::vector<int64_t> encode(const std::string& text) const;
  // OpenAI's clip.tokenize for one text: <|startoftext|>, the ids, <|endoftext|>, zero-padded to
  // context_length. Too long: cut to context_length with <|endoftext|> last (truncate), or asg::Error(Data).
  std::vector<int64_t> tokenize(const std::string& text, int64_t context_length = 77, bool truncate = true) const;
  // The text of ids (end-of-word marks become spaces), up to <|endoftext|> (the padding after it is
  // dropped, as is <|startoftext|>).
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t start_token() const { return start_; }
  int64_t end_token() const { return end_; }
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }

 private:
  std::vector<std::string> bpe(const std::string& piece) const;  // symbols after merging

  std::vector<std::string> tokens_;                       // id -> token text
  std::unordered_map<std::string, int64_t> ids_;          // token text -> id
  std::map<std::pair<std::string, std::string>, int64_t> ranks_;  // merge -> rank
  std::vector<std::string> byte_symbols_;                 // byte -> its printable character (UTF-8)
  int64_t start_ = 0, end_ = 0;
};

}  // namespace asg
