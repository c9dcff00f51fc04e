// T5's SentencePiece tokenizer, as transformers 5.23's T5Tokenizer.from_pretrained(folder with spiece.model)
// tokenizes (its default, "legacy" behaviour, 100 extra ids), for T5 text encoders (plugins/text_encoders/t5_text).
// No torch.
//
// transformers 5 does not run SentencePiece: it converts the model for HuggingFace's tokenizers library (0.23).
// The model file (SentencePiece's ModelProto) is read here: its pieces, scores, types and character map. Google's
// libsentencepiece is not linked: it exports its own copy of protobuf-lite, and a process holding it and LibTorch
// (which bundles another protobuf) deadlocked running a TorchScript module. tokenizers' steps are done here, and
// libsentencepiece's own encoding would differ from them in two places anyway: its normalizer matches the longest
// mapped text where tokenizers looks up whole grapheme clusters (a "²" or "½" followed by a combining accent, "e" + U+0301 + U+200C, ...), and its Viterbi search breaks
// ties between equal-scoring segmentations differently ("..." from "." and ".."). The steps:
// 1. Split out the special tokens written in the text, exactly as written (case-sensitive, no normalization),
//    leftmost first, longest first: the model's control pieces (T5: <pad>, </s>), <pad>, </s>, <unk>, and
//    <extra_id_0> ... <extra_id_{extra_ids-1}>.
// 2. Normalize the text between them with the model's precompiled character map (T5's NMT-NFKC), as tokenizers'
//    Precompiled normalizer does: each grapheme cluster (ICU) shorter than 6 bytes is replaced whole by the
//    replacement of its shortest mapped prefix, if it has one, else each character on its own.
// 3. Split at Unicode white space; each word gets "▁" in front unless it starts with one, and is cut before
//    every "▁" (WhitespaceSplit and Metaspace). The model's own add_dummy_prefix / remove_extra_whitespaces
//    settings play no part, as in transformers.
// 4. Each piece of a word: the best unigram segmentation (tokenizers' encode_optimized, in double precision, the
//    first found of equal scores kept), over the model's pieces and the extra ids; an unknown character scores 10
//    below the lowest piece, and a run of them is one <unk>.
// Not covered: models with user-defined symbols (transformers makes them added tokens; they are read here as
// ordinary pieces). T5's model has none. Text must be valid UTF-8.
//
// tests/text/sentencepiece_tokenizer_test.cpp checks identical ids (encode, and tokenize with truncation and
// padding) with transformers 5.23 on 1,000 captions (English, Chinese, emoji, accents, full-width and zero-width
// characters, tabs and newlines, repeated spaces, special tokens in the text, long captions), with a unigram model
// the fixture trains with SentencePiece 0.2 (Python). Also checked while writing
// this: every Unicode code point (between two letters, and the first 12,288 followed by a combining accent) and
// 12,000 random strings of odd characters give transformers' ids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace asg {

class SentencePieceTokenizer {
 public:
  // Ids cut and padded to a fixed length, and how many of them are the text's (the attention mask is 1 for
  // those, 0 for the padding after them).
  struct Tokens {
    std::vector<int64_t> ids;
    int64_t real_tokens = 0;
    std::vector<int64_t> attention_mask() const;
  };

  // A SentencePiece model file (T5's spiece.model) with the pieces <pad>, </s> and <unk>, and `extra_ids`
  // sentinel tokens after its pieces: <extra_id_0> has the last id, <extra_id_{extra_ids-1}> the first after the
  // model's pieces (T5: 32,000 pieces, vocabulary 32,100). asg::Error(Config) naming the file when it is missing,
  // unreadable, not a SentencePiece model, without <pad>, </s> or <unk>, or its character map is malformed.
  static SentencePieceTokenizer from_model_file(const std::filesystem::path& model, int64_t extra_ids = 100);

  // The ids of the text, without </s> (transformers' add_special_tokens=False). Text must be valid UTF-8.
  std::vector<int64_t> encode(const std::string& text) const;
  // transformers' tokenizer(text, truncation=True, max_length=max_length, padding="max_length"): the ids, then
  // </s>; too long: cut to max_length with </s> last; shorter: padded with <pad> to max_length (unless !pad).
  Tokens tokenize(const std::string& text, int64_t max_length, bool pad = true) const;

  // The model's pieces and the extra ids.
  int64_t vocab_size() const;
  int64_t pad_token() const;
  int64_t eos_token() const;
  int64_t unk_token() const;
  // The id of <extra_id_{index}>.
  int64_t extra_id_token(int64_t index) const;

 private:
  struct Model;  // keeps SentencePiece's headers out of this one
  explicit SentencePieceTokenizer(std::shared_ptr<const Model> model) : model_(std::move(model)) {}
  std::shared_ptr<const Model> model_;
};

}  // namespace asg
