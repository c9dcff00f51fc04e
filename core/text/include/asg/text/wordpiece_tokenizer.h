// BERT's WordPiece tokenizer, as transformers 5.23's BertTokenizer.from_pretrained(folder with vocab.txt) tokenizes
// (HuggingFace tokenizers 0.23 underneath: BertNormalizer, BertPreTokenizer, WordPiece), for the text towers that use
// it: Chinese-CLIP's RoBERTa-wwm-ext, uer's Chinese T5. No torch; ICU for Unicode.
//
// What it does, in transformers' order:
// 1. Split out the special tokens written in the text, exactly as written (case-sensitive, before any
//    normalization): [PAD], [UNK], [CLS], [SEP], [MASK]. "[cls]" is ordinary text ("[", "cls", "]").
// 2. Clean: drop NUL, U+FFFD and control characters (categories Cc, Cf, Co but tab, newline and carriage return);
//    white space (Unicode's White_Space, tab, newline, return) becomes a space.
// 3. Put spaces around CJK ideographs, as tokenizers lists them: U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF,
//    U+20000-2A6DF, U+2A700-2B81F, U+2B920-2CEAF, U+2F800-2FA1F.
// 4. With lower_case: NFD, drop non-spacing marks (Mn), lower-case each character (its full mapping, no context:
//    "Σ" is always "σ").
// 5. Split at white space, and around each punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, and Unicode's
//    P* categories).
// 6. Each word: greedy longest-match-first WordPiece, later pieces prefixed "##"; a word that does not split into
//    vocabulary pieces, or is longer than 100 characters, is one [UNK].
// tokenize() adds [CLS] and [SEP], cuts to max_length with [SEP] last, pads with [PAD].
// The character classes of steps 2, 4 and 5 are those of the tokenizers library, which takes Unicode 8.0's
// categories: here ICU's categories for characters Unicode 8.0 had, with the six whose category changed since
// set back; lower-casing is ICU's with the mappings Unicode 16 and 17 added; NFD is ICU's but for U+11938, which
// tokenizers leaves whole.
//
// tests/text/wordpiece_tokenizer_test.cpp checks identical ids with transformers 5.23 on 1,000 captions (English,
// mixed-case accented Latin, Chinese and its punctuation, numbers, emoji, full-width and zero-width characters,
// tabs and newlines, repeated spaces, special tokens in the text, long captions), lower-cased and, for 300 of
// them, not. Also checked while writing this (ICU 72): the words of every Unicode code point (between two
// letters, and the first 12,288 followed by a combining accent), lower-cased and not, and the ids of 12,000 random
// strings of odd characters, against transformers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

namespace asg {

class WordPieceTokenizer {
 public:
  // Ids cut and padded to a fixed length, and how many of them are the text's (the attention mask is 1 for
  // those, 0 for the padding after them).
  struct Tokens {
    std::vector<int64_t> ids;
    int64_t real_tokens = 0;
    std::vector<int64_t> attention_mask() const;
  };

  // BERT's vocab.txt: one token per line, its id the line's index (from 0); trailing white space is not part of
  // the token. It must have [PAD], [UNK], [CLS] and [SEP]; without [MASK], [MASK] gets the next id, as transformers
  // adds it. asg::Error(Config) naming the file (and line) when it is missing or unreadable, a token is listed
  // twice, a line is not UTF-8, or a special token is missing.
  static WordPieceTokenizer from_vocab_file(const std::filesystem::path& vocab, bool lower_case = true);

  // The ids of the text, without [CLS] and [SEP] (transformers' add_special_tokens=False). Text must be UTF-8.
  std::vector<int64_t> encode(const std::string& text) const;
  // transformers' tokenizer(text, truncation=True, max_length=max_length, padding="max_length"): [CLS], the ids,
  // [SEP]; too long: cut to max_length with [SEP] last; shorter: padded with [PAD] to max_length (unless !pad).
  Tokens tokenize(const std::string& text, int64_t max_length, bool pad = true) const;
  // The words WordPiece is given (steps 1-5; special tokens as written), for checking the normalization.
  std::vector<std::string> words(const std::string& text) const;

  // The file's ids, and [MASK]'s when the file has none (transformers' len(tokenizer)).
  int64_t vocab_size() const { return vocab_size_; }
  int64_t pad_token() const { return pad_; }
  int64_t unk_token() const { return unk_; }
  int64_t cls_token() const { return cls_; }
  int64_t sep_token() const { return sep_; }
  int64_t mask_token() const { return mask_; }
  bool lower_case() const { return lower_case_; }

 private:
  WordPieceTokenizer() = default;
  // Steps 2-5 on text without special tokens, the words appended to `out`.
  void split_words(const std::string& text, std::vector<std::string>& out) const;
  // Step 6 on one word, its ids appended to `out`.
  void word_ids(const std::string& word, std::vector<int64_t>& out) const;

  std::unordered_map<std::string, int64_t> ids_;      // token -> id
  std::unordered_map<std::string, int64_t> special_;  // the special tokens matched in the text
  bool lower_case_ = true;
  int64_t vocab_size_ = 0;
  int64_t pad_ = 0, unk_ = 0, cls_ = 0, sep_ = 0, mask_ = 0;
};

}  // namespace asg
