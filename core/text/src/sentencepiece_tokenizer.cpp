// T5's tokenizer as transformers 5.23 runs it (see the header): the model file read with a minimal protobuf
// reader, the steps of HuggingFace tokenizers' pipeline done here.
#include "asg/text/sentencepiece_tokenizer.h"

#include <fmt/format.h>
#include <unicode/brkiter.h>
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "asg/error.h"

namespace asg {

namespace {

constexpr std::string_view kWordStart = "\xE2\x96\x81";  // "▁", which starts every word
constexpr double kUnknownPenalty = 10.0;                   // SentencePiece's and tokenizers' kUnkPenalty

// SentencePiece's precompiled character map (NormalizerSpec.precompiled_charsmap): a darts-clone double-array trie
// of the texts it rewrites, and their replacements, NUL-terminated. Empty: no normalization.
class CharacterMap {
 public:
  CharacterMap() = default;
  // The map's bytes; nullopt when they are not a character map.
  static std::optional<CharacterMap> parse(std::string_view blob) {
    CharacterMap map;
    if (blob.empty()) return map;
    if (blob.size() < 4) return std::nullopt;
    const uint32_t trie_bytes = static_cast<uint32_t>(static_cast<unsigned char>(blob[0])) |
                                static_cast<uint32_t>(static_cast<unsigned char>(blob[1])) << 8 |
                                static_cast<uint32_t>(static_cast<unsigned char>(blob[2])) << 16 |
                                static_cast<uint32_t>(static_cast<unsigned char>(blob[3])) << 24;
    if (trie_bytes % 4 != 0 || trie_bytes == 0 || blob.size() - 4 < trie_bytes) return std::nullopt;
    for (size_t i = 4; i < 4 + trie_bytes; i += 4) {
      uint32_t unit = 0;
      for (size_t b = 0; b < 4; ++b) unit |= static_cast<uint32_t>(static_cast<unsigned char>(blob[i + b])) << (8 * b);
      map.units_.push_back(unit);
    }
    map.replacements_ = std::string(blob.substr(4 + trie_bytes));
    return map;
  }

  // spm_precompiled's transform (what tokenizers uses): the replacement of the *shortest* text in the map that
  // starts `text` (the rest of `text` is dropped with it), or nullopt. A NUL ends the search.
  std::optional<std::string_view> transform(std::string_view text) const {
    if (units_.empty()) return std::nullopt;
    size_t position = offset(units_[0]);
    for (unsigned char c : text) {
      if (c == 0) break;
      position ^= c;
      if (position >= units_.size() || label(units_[position]) != c) return std::nullopt;
      const uint32_t unit = units_[position];
      position ^= offset(unit);
      if (has_leaf(unit)) {
        if (position >= units_.size()) return std::nullopt;
        const size_t start = units_[position] & 0x7FFFFFFFu;
        if (start >= replacements_.size()) return std::nullopt;
        const size_t end = replacements_.find('\0', start);
        return std::string_view(replacements_).substr(start, end == std::string::npos ? std::string::npos : end - start);
      }
    }
    return std::nullopt;
  }

 private:
  static size_t offset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }
  static uint32_t label(uint32_t unit) { return unit & ((1u << 31) | 0xFFu); }
  static bool has_leaf(uint32_t unit) { return ((unit >> 8) & 1) == 1; }

  std::vector<uint32_t> units_;
  std::string replacements_;
};

// Protocol Buffers' wire format, just enough to read SentencePiece's ModelProto (sentencepiece_model.proto):
// each field of `message` in order, as its number, wire type, and either its varint/fixed value or its bytes.
// false when the message is malformed. Why not libsentencepiece: it carries its own copy of protobuf-lite and
// exports it, and a process that also holds LibTorch (which bundles another protobuf) deadlocks once both are
// loaded (seen running a TorchScript module with Debian's libsentencepiece0 0.1.97 linked in). The model file
// is a plain message; reading the few fields the tokenizer needs is simpler than isolating the library.
struct ProtoField {
  uint64_t number = 0, wire_type = 0, value = 0;  // value: a varint, or a fixed32/fixed64's bits
  std::string_view bytes;                         // wire type 2
};
template <typename Visit>
bool for_each_field(std::string_view message, Visit&& visit) {
  const auto varint = [&](uint64_t& value) {
    value = 0;
    for (int shift = 0; shift < 64 && !message.empty(); shift += 7) {
      const auto byte = static_cast<unsigned char>(message[0]);
      message.remove_prefix(1);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return true;
    }
    return false;
  };
  while (!message.empty()) {
    ProtoField field;
    uint64_t key = 0;
    if (!varint(key)) return false;
    field.number = key >> 3;
    field.wire_type = key & 7;
    switch (field.wire_type) {
      case 0:
        if (!varint(field.value)) return false;
        break;
      case 1:
      case 5: {
        const size_t size = field.wire_type == 1 ? 8 : 4;
        if (message.size() < size) return false;
        for (size_t b = 0; b < size; ++b) field.value |= static_cast<uint64_t>(static_cast<unsigned char>(message[b])) << (8 * b);
        message.remove_prefix(size);
        break;
      }
      case 2:
        if (!varint(field.value) || field.value > message.size()) return false;
        field.bytes = message.substr(0, field.value);
        message.remove_prefix(field.value);
        break;
      default:
        return false;
    }
    visit(field);
  }
  return true;
}

// One ModelProto.pieces entry (field 1): SentencePiece { piece = 1; score = 2 (float); type = 3 }.
struct ModelPiece {
  std::string text;
  float score = 0;
  uint64_t type = 1;  // NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
};
constexpr uint64_t kControlPiece = 3;

// Bytes of the UTF-8 character that starts with `lead`.
size_t utf8_length(char lead) {
  const auto b = static_cast<unsigned char>(lead);
  return b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
}

}  // namespace

struct SentencePieceTokenizer::Model {
  int64_t pieces = 0;  // the model's own; the extra ids follow
  int64_t extra_ids = 0;
  int64_t pad = 0, eos = 0, unk = 0;
  CharacterMap character_map;
  // transformers' unigram vocabulary: the model's pieces and the extra ids (score 0); each text's last id; the
  // score of an unknown character.
  std::vector<std::string> vocabulary;
  std::vector<double> scores;
  std::unordered_map<std::string_view, int64_t> ids;  // views of `vocabulary`
  size_t longest_piece = 0;                            // in bytes
  double unknown_score = 0;
  // Tokens matched as written in the text (transformers' added tokens): the control pieces, <pad>, </s>, <unk>,
  // the extra ids; longest first.
  std::vector<std::pair<std::string, int64_t>> special_tokens;
  std::string special_first_bytes;
  std::unique_ptr<icu::BreakIterator> graphemes;  // cloned for each use: a break iterator is not thread-safe

  std::string normalize(std::string_view text) const;
  void encode_text(std::string_view text, std::vector<int64_t>& out) const;
  void encode_word(std::string_view word, std::vector<int64_t>& out) const;
};

SentencePieceTokenizer SentencePieceTokenizer::from_model_file(const std::filesystem::path& path, int64_t extra_ids) {
  if (!std::filesystem::is_regular_file(path))
    throw config_error(fmt::format("{}: no SentencePiece model here (T5's is spiece.model)", path.string()));
  if (extra_ids < 0) throw config_error(fmt::format("{}: extra_ids is {}; valid: 0 or more (T5: 100)", path.string(), extra_ids));
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error(fmt::format("{}: cannot read the SentencePiece model", path.string()));
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw config_error(fmt::format("{}: cannot read the SentencePiece model", path.string()));
  }
  // ModelProto: pieces (1, repeated), trainer_spec (2: model_type 3, UNIGRAM = 1), normalizer_spec (3:
  // precompiled_charsmap 2). The last of a repeated singular field counts, as in protobuf.
  std::vector<ModelPiece> pieces;
  std::string_view normalizer_spec, charsmap;
  uint64_t model_type = 1;
  bool well_formed = for_each_field(bytes, [&](const ProtoField& f) {
    if (f.number == 1 && f.wire_type == 2) {
      ModelPiece piece;
      if (!for_each_field(f.bytes, [&](const ProtoField& p) {
            if (p.number == 1 && p.wire_type == 2) piece.text = std::string(p.bytes);
            else if (p.number == 2 && p.wire_type == 5) std::memcpy(&piece.score, &p.value, sizeof(float));
            else if (p.number == 3 && p.wire_type == 0) piece.type = p.value;
          }))
        piece.type = 0;  // marks the piece malformed
      pieces.push_back(std::move(piece));
    } else if (f.number == 2 && f.wire_type == 2) {
      for_each_field(f.bytes, [&](const ProtoField& t) {
        if (t.number == 3 && t.wire_type == 0) model_type = t.value;
      });
    } else if (f.number == 3 && f.wire_type == 2) {
      normalizer_spec = f.bytes;
    }
  });
  well_formed = well_formed && std::none_of(pieces.begin(), pieces.end(), [](const ModelPiece& p) { return p.type == 0; }) &&
                for_each_field(normalizer_spec, [&](const ProtoField& n) {
                  if (n.number == 2 && n.wire_type == 2) charsmap = n.bytes;
                });
  if (!well_formed || pieces.empty())
    throw config_error(fmt::format("{}: not a SentencePiece model ({})", path.string(), well_formed ? "no pieces" : "its bytes are not a ModelProto"));
  if (model_type != 1)
    throw config_error(fmt::format("{}: a SentencePiece model of type {} (valid: a unigram model, type 1, as T5's)", path.string(), model_type));
  auto model = std::make_shared<Model>();
  model->pieces = static_cast<int64_t>(pieces.size());
  model->extra_ids = extra_ids;

  auto character_map = CharacterMap::parse(charsmap);
  if (!character_map) throw config_error(fmt::format("{}: the SentencePiece model's precompiled character map is malformed", path.string()));
  model->character_map = std::move(*character_map);

  // transformers looks the special tokens up by name, so the model must have them (T5: 0, 1 and 2).
  const auto piece_id = [&](const std::string& piece) {
    const auto at = std::find_if(pieces.begin(), pieces.end(), [&](const ModelPiece& p) { return p.text == piece; });
    if (at == pieces.end())
      throw config_error(fmt::format("{}: the SentencePiece model has no piece \"{}\"; T5's tokenizer needs <pad>, </s> and <unk>",
                                     path.string(), piece));
    return static_cast<int64_t>(at - pieces.begin());
  };
  model->pad = piece_id("<pad>");
  model->eos = piece_id("</s>");
  model->unk = piece_id("<unk>");

  // The unigram vocabulary as transformers converts it: every piece with its score, then the extra ids, <extra_id_0>
  // last, with score 0; an unknown character scores 10 below the lowest.
  for (const auto& piece : pieces) {
    model->vocabulary.push_back(piece.text);
    model->scores.push_back(piece.score);
  }
  for (int64_t i = extra_ids - 1; i >= 0; --i) {
    model->vocabulary.push_back(fmt::format("<extra_id_{}>", i));
    model->scores.push_back(0.0);
  }
  for (size_t id = 0; id < model->vocabulary.size(); ++id) {
    model->ids[model->vocabulary[id]] = static_cast<int64_t>(id);  // a repeated text keeps its last id
    model->longest_piece = std::max(model->longest_piece, model->vocabulary[id].size());
  }
  model->unknown_score = *std::min_element(model->scores.begin(), model->scores.end()) - kUnknownPenalty;

  std::vector<std::string> special = {"<pad>", "</s>", "<unk>"};
  for (const auto& piece : pieces)
    if (piece.type == kControlPiece) special.push_back(piece.text);
  for (auto id = static_cast<size_t>(model->pieces); id < model->vocabulary.size(); ++id) special.push_back(model->vocabulary[id]);
  for (const auto& token : special) {
    const auto same = [&](const auto& t) { return t.first == token; };
    if (token.empty() || std::any_of(model->special_tokens.begin(), model->special_tokens.end(), same)) continue;
    model->special_tokens.emplace_back(token, model->ids.at(token));
    if (model->special_first_bytes.find(token[0]) == std::string::npos) model->special_first_bytes += token[0];
  }
  std::stable_sort(model->special_tokens.begin(), model->special_tokens.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  UErrorCode icu_status = U_ZERO_ERROR;
  model->graphemes.reset(icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), icu_status));
  if (U_FAILURE(icu_status) || !model->graphemes)
    throw internal_error(std::string("ICU: no grapheme break iterator: ") + u_errorName(icu_status));
  return SentencePieceTokenizer(std::move(model));
}

// tokenizers' Precompiled normalizer: each grapheme cluster shorter than 6 bytes is looked up whole first (its
// shortest mapped prefix replaces all of it, so "²" with a combining accent is "2"), else each character on its
// own. libsentencepiece's normalizer matches the longest text instead, and gives other text in such cases.
std::string SentencePieceTokenizer::Model::normalize(std::string_view text) const {
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  std::unique_ptr<icu::BreakIterator> breaks(graphemes->clone());
  breaks->setText(u);
  std::string out, grapheme, character;
  for (int32_t start = breaks->first(), end = breaks->next(); end != icu::BreakIterator::DONE; start = end, end = breaks->next()) {
    grapheme.clear();
    u.tempSubStringBetween(start, end).toUTF8String(grapheme);
    if (grapheme.size() < 6) {
      if (auto replacement = character_map.transform(grapheme)) {
        out += *replacement;
        continue;
      }
    }
    for (size_t i = 0; i < grapheme.size();) {
      const std::string_view one = std::string_view(grapheme).substr(i, utf8_length(grapheme[i]));
      const auto replacement = character_map.transform(one);
      out += replacement ? *replacement : one;
      i += one.size();
    }
  }
  return out;
}

// tokenizers' Unigram::encode_optimized: the best-scoring segmentation by dynamic programming over byte
// positions, in double precision; of equal scores the first found stays (libsentencepiece 0.1.97 compares a
// double with a float there and breaks such ties the other way: "..." is "." ".." here and ".." "." there).
// Unknown characters score `unknown_score` each, and a run of them is one <unk>.
void SentencePieceTokenizer::Model::encode_word(std::string_view word, std::vector<int64_t>& out) const {
  struct BestPath {
    double score = 0;
    int64_t id = -1;
    int64_t start = -1;  // -1: no path ends here yet
  };
  std::vector<BestPath> best(word.size() + 1);
  const auto offer = [&](size_t end, double score, int64_t id, size_t start) {
    BestPath& b = best[end];
    if (b.start == -1 || score > b.score) b = {score, id, static_cast<int64_t>(start)};
  };
  for (size_t start = 0; start < word.size();) {
    const double score_so_far = best[start].score;
    const size_t character = std::min(utf8_length(word[start]), word.size() - start);
    bool character_is_a_piece = false;
    for (size_t length = 1; length <= std::min(longest_piece, word.size() - start); ++length) {
      auto it = ids.find(word.substr(start, length));
      if (it == ids.end()) continue;
      offer(start + length, scores[static_cast<size_t>(it->second)] + score_so_far, it->second, start);
      character_is_a_piece = character_is_a_piece || length == character;
    }
    if (!character_is_a_piece) offer(start + character, unknown_score + score_so_far, unk, start);
    start += character;
  }
  // Back from the end; the texts of adjacent unknowns are joined, then each text is looked up (not found: <unk>).
  std::vector<std::string> texts;
  std::string unknown;
  for (size_t end = word.size(); end > 0;) {
    const BestPath& b = best[end];
    const auto start = static_cast<size_t>(b.start);
    if (b.id == unk) {
      unknown.insert(0, word.substr(start, end - start));
    } else {
      if (!unknown.empty()) texts.push_back(std::move(unknown));
      unknown.clear();
      texts.emplace_back(word.substr(start, end - start));
    }
    end = start;
  }
  if (!unknown.empty()) texts.push_back(std::move(unknown));
  for (auto text = texts.rbegin(); text != texts.rend(); ++text) {
    auto it = ids.find(*text);
    out.push_back(it == ids.end() ? unk : it->second);
  }
}

// Text between special tokens: normalized, split at white space (Rust's char::is_whitespace: Unicode's White_Space);
// each word gets "▁" in front unless it starts with one, and is cut before every "▁" (transformers' WhitespaceSplit
// and Metaspace pre-tokenizers).
void SentencePieceTokenizer::Model::encode_text(std::string_view text, std::vector<int64_t>& out) const {
  const std::string normalized = normalize(text);
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(normalized);
  std::string word;
  const auto flush = [&] {
    if (word.empty()) return;
    if (word.compare(0, kWordStart.size(), kWordStart) != 0) word.insert(0, kWordStart);
    for (size_t start = 0; start < word.size();) {
      size_t next = word.find(kWordStart, start + 1);
      if (next == std::string::npos) next = word.size();
      encode_word(std::string_view(word).substr(start, next - start), out);
      start = next;
    }
    word.clear();
  };
  for (int32_t i = 0; i < u.length(); i = u.moveIndex32(i, 1)) {
    const UChar32 c = u.char32At(i);
    if (u_isUWhiteSpace(c)) {
      flush();
    } else {
      icu::UnicodeString(c).toUTF8String(word);
    }
  }
  flush();
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text) const {
  const Model& m = *model_;
  std::vector<int64_t> ids;
  // transformers finds special tokens leftmost first, of those starting at the same place the longest.
  size_t start = 0;
  for (size_t at = text.find_first_of(m.special_first_bytes); at != std::string::npos; at = text.find_first_of(m.special_first_bytes, at + 1)) {
    auto special = std::find_if(m.special_tokens.begin(), m.special_tokens.end(),
                                [&](const auto& token) { return text.compare(at, token.first.size(), token.first) == 0; });
    if (special == m.special_tokens.end()) continue;
    m.encode_text(std::string_view(text).substr(start, at - start), ids);
    ids.push_back(special->second);
    start = at + special->first.size();
    at = start - 1;
  }
  m.encode_text(std::string_view(text).substr(start), ids);
  return ids;
}

SentencePieceTokenizer::Tokens SentencePieceTokenizer::tokenize(const std::string& text, int64_t max_length, bool pad) const {
  if (max_length < 1) throw internal_error(fmt::format("SentencePieceTokenizer::tokenize: max_length {} < 1", max_length));
  Tokens out{encode(text), 0};
  if (static_cast<int64_t>(out.ids.size()) >= max_length) out.ids.resize(static_cast<size_t>(max_length - 1));  // </s> stays last
  out.ids.push_back(model_->eos);
  out.real_tokens = static_cast<int64_t>(out.ids.size());
  if (pad) out.ids.resize(static_cast<size_t>(max_length), model_->pad);
  return out;
}

std::vector<int64_t> SentencePieceTokenizer::Tokens::attention_mask() const {
  std::vector<int64_t> mask(ids.size(), 0);
  std::fill(mask.begin(), mask.begin() + real_tokens, 1);
  return mask;
}

int64_t SentencePieceTokenizer::vocab_size() const { return model_->pieces + model_->extra_ids; }
int64_t SentencePieceTokenizer::pad_token() const { return model_->pad; }
int64_t SentencePieceTokenizer::eos_token() const { return model_->eos; }
int64_t SentencePieceTokenizer::unk_token() const { return model_->unk; }

int64_t SentencePieceTokenizer::extra_id_token(int64_t index) const {
  if (index < 0 || index >= model_->extra_ids)
    throw internal_error(fmt::format("SentencePieceTokenizer: no <extra_id_{}> (extra ids: {})", index, model_->extra_ids));
  return model_->pieces + model_->extra_ids - 1 - index;
}

}  // namespace asg
