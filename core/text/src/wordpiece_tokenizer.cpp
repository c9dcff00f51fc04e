// BERT's WordPiece tokenizer as transformers 5.23 (tokenizers 0.23) runs it; see the header.
#include "asg/text/wordpiece_tokenizer.h"

#include <fmt/format.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include "asg/error.h"

namespace asg {

namespace {

constexpr const char* kSpecialTokens[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
// tokenizers' WordPiece default: a longer word is [UNK] without trying.
constexpr int64_t kMaxCharactersPerWord = 100;

// tokenizers takes its categories from the unicode_categories crate, which has Unicode 8.0's tables. A character
// Unicode 8.0 did not have is in none of its categories.
bool in_unicode_8(UChar32 c) {
  UVersionInfo age;
  u_charAge(c, age);
  static const UVersionInfo kUnicode8 = {8, 0, 0, 0};
  return age[0] != 0 && std::memcmp(age, kUnicode8, sizeof age) <= 0;
}

// Categories Cc, Cf, Co, Cs (tokenizers' is_other): cleaned away.
bool is_other(UChar32 c) {
  const int8_t type = u_charType(c);
  return (type == U_CONTROL_CHAR || type == U_FORMAT_CHAR || type == U_PRIVATE_USE_CHAR || type == U_SURROGATE) && in_unicode_8(c);
}

// Punctuation as BertPreTokenizer splits it: ASCII's, and P* as Unicode 8.0 had it. Since then U+166D became So and
// U+111C9 Mn.
bool is_punctuation(UChar32 c) {
  if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  if (c == 0x166D || c == 0x111C9) return true;
  return (U_GET_GC_MASK(c) & U_GC_P_MASK) != 0 && in_unicode_8(c);
}

// Non-spacing marks (Mn) as Unicode 8.0 had them: since then U+1734 became Mc; U+1885, U+1886 (Lo), U+A9BD (Mc)
// and U+111C9 (Po) became Mn.
bool is_nonspacing_mark(UChar32 c) {
  if (c == 0x1734) return true;
  if (c == 0x1885 || c == 0x1886 || c == 0xA9BD || c == 0x111C9) return false;
  return u_charType(c) == U_NON_SPACING_MARK && in_unicode_8(c);
}

// Lower-case mappings that Rust's char::to_lowercase has (Unicode 17, in tokenizers 0.23) and ICU 72 (Unicode 15)
// has not: characters added in Unicode 16 and 17. Used only where ICU leaves the character as it is.
UChar32 newer_lowercase(UChar32 c) {
  struct Range {
    UChar32 first, last, lower_of_first;
  };
  static constexpr Range kRanges[] = {{0x1C89, 0x1C89, 0x1C8A}, {0xA7CB, 0xA7CB, 0x0264}, {0xA7CC, 0xA7CC, 0xA7CD},
                                      {0xA7CE, 0xA7CE, 0xA7CF}, {0xA7D2, 0xA7D2, 0xA7D3}, {0xA7D4, 0xA7D4, 0xA7D5},
                                      {0xA7DA, 0xA7DA, 0xA7DB}, {0xA7DC, 0xA7DC, 0x019B}, {0x10D50, 0x10D65, 0x10D70},
                                      {0x16EA0, 0x16EB8, 0x16EBB}};
  for (const Range& r : kRanges)
    if (c >= r.first && c <= r.last) return r.lower_of_first + (c - r.first);
  return c;
}

// Rust's char::to_lowercase: the full mapping of one character, no context ("Σ" is always "σ"; ICU's toLower of
// a whole string would make a final sigma "ς").
icu::UnicodeString lowercase(UChar32 c) {
  icu::UnicodeString lower = icu::UnicodeString(c).toLower(icu::Locale::getRoot());
  if (lower == icu::UnicodeString(c)) lower = icu::UnicodeString(newer_lowercase(c));
  return lower;
}

bool is_white_space(UChar32 c) { return u_isUWhiteSpace(c); }  // Rust's char::is_whitespace: White_Space

// The ranges BertNormalizer puts spaces around (tokenizers' is_chinese_char).
bool is_cjk_ideograph(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0x2F800 && c <= 0x2FA1F);
}

std::string utf8_of(const icu::UnicodeString& u) {
  std::string out;
  u.toUTF8String(out);
  return out;
}

}  // namespace

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::filesystem::path& path, bool lower_case) {
  if (!std::filesystem::is_regular_file(path))
    throw config_error(fmt::format("{}: no WordPiece vocabulary here (BERT's is vocab.txt, one token per line)", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config_error(fmt::format("{}: cannot read the WordPiece vocabulary", path.string()));
  const std::string text(std::istreambuf_iterator<char>(in), {});
  if (in.bad()) throw config_error(fmt::format("{}: cannot read the WordPiece vocabulary", path.string()));

  WordPieceTokenizer tok;
  tok.lower_case_ = lower_case;
  std::unordered_map<std::string, int64_t> line_of;  // token -> its line, for the duplicate message
  int64_t id = 0;
  // Lines as Rust's BufRead::lines reads them (a last "\n" ends the last line, "\r\n" ends one too).
  for (size_t start = 0; start < text.size(); ++id) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    const int64_t number = id + 1;
    icu::UnicodeString u = icu::UnicodeString::fromUTF8(line);
    if (utf8_of(u) != line) throw config_error(fmt::format("{}:{}: the line is not UTF-8 text", path.string(), number));
    // transformers (tokenizers' WordPiece::read_file) trims trailing white space, "\r" included.
    int32_t length = u.length();
    while (length > 0 && is_white_space(u.char32At(length - 1))) length = u.moveIndex32(length, -1);
    const std::string token = utf8_of(u.tempSubString(0, length));
    auto [it, inserted] = line_of.emplace(token, number);
    if (!inserted)
      throw config_error(fmt::format("{}:{}: the token '{}' is already on line {} (each token once: its line is its id)", path.string(),
                                     number, token, it->second));
    tok.ids_[token] = id;
  }
  tok.vocab_size_ = id;
  for (const char* special : kSpecialTokens) {
    auto it = tok.ids_.find(special);
    if (it != tok.ids_.end()) {
      tok.special_[special] = it->second;
    } else if (std::string_view(special) == "[MASK]") {
      tok.special_[special] = tok.vocab_size_++;  // transformers adds it after the file's tokens
    } else {
      throw config_error(fmt::format("{}: no {} token; BERT's vocabulary has [PAD], [UNK], [CLS], [SEP] and [MASK]", path.string(), special));
    }
  }
  tok.pad_ = tok.special_.at("[PAD]");
  tok.unk_ = tok.special_.at("[UNK]");
  tok.cls_ = tok.special_.at("[CLS]");
  tok.sep_ = tok.special_.at("[SEP]");
  tok.mask_ = tok.special_.at("[MASK]");
  return tok;
}

void WordPieceTokenizer::split_words(const std::string& text, std::vector<std::string>& out) const {
  const icu::UnicodeString input = icu::UnicodeString::fromUTF8(text);
  // Clean, and space out the ideographs.
  icu::UnicodeString cleaned;
  for (int32_t i = 0; i < input.length(); i = input.moveIndex32(i, 1)) {
    const UChar32 c = input.char32At(i);
    const bool counted_as_space = c == '\t' || c == '\n' || c == '\r';
    if (c == 0 || c == 0xFFFD || (!counted_as_space && is_other(c))) continue;
    if (counted_as_space || is_white_space(c)) {
      cleaned.append(u' ');
    } else if (is_cjk_ideograph(c)) {
      cleaned.append(u' ').append(c).append(u' ');
    } else {
      cleaned.append(c);
    }
  }
  icu::UnicodeString normalized;
  if (lower_case_) {
    // Accents off (NFD, non-spacing marks dropped), then each character lower-cased on its own.
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
    if (U_FAILURE(status)) throw internal_error(std::string("ICU: no NFD normalizer: ") + u_errorName(status));
    // tokenizers' NFD (Rust's unicode-normalization crate) leaves U+11938 DIVES AKURU VOWEL SIGN O whole. It is a
    // starter, so NFD of the text on either side of it, each on its own, is NFD of the rest.
    icu::UnicodeString decomposed;
    for (int32_t start = 0; start <= cleaned.length();) {
      int32_t end = cleaned.indexOf(static_cast<UChar32>(0x11938), start);
      if (end < 0) end = cleaned.length();
      decomposed.append(nfd->normalize(cleaned.tempSubStringBetween(start, end), status));
      if (end < cleaned.length()) decomposed.append(static_cast<UChar32>(0x11938));
      start = end + U16_LENGTH(0x11938);
    }
    if (U_FAILURE(status)) throw internal_error(std::string("ICU: cannot decompose a text (NFD): ") + u_errorName(status));
    for (int32_t i = 0; i < decomposed.length(); i = decomposed.moveIndex32(i, 1)) {
      const UChar32 c = decomposed.char32At(i);
      if (is_nonspacing_mark(c)) continue;
      normalized.append(lowercase(c));
    }
  } else {
    normalized = cleaned;
  }
  // Words: split at white space, each punctuation character a word of its own.
  icu::UnicodeString word;
  const auto flush = [&] {
    if (!word.isEmpty()) out.push_back(utf8_of(word));
    word.remove();
  };
  for (int32_t i = 0; i < normalized.length(); i = normalized.moveIndex32(i, 1)) {
    const UChar32 c = normalized.char32At(i);
    if (is_white_space(c)) {
      flush();
    } else if (is_punctuation(c)) {
      flush();
      word.append(c);
      flush();
    } else {
      word.append(c);
    }
  }
  flush();
}

void WordPieceTokenizer::word_ids(const std::string& word, std::vector<int64_t>& out) const {
  // Where each character starts (UTF-8), and the end.
  std::vector<size_t> starts;
  for (size_t i = 0; i < word.size(); ++i)
    if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) starts.push_back(i);
  if (static_cast<int64_t>(starts.size()) > kMaxCharactersPerWord) {
    out.push_back(unk_);
    return;
  }
  starts.push_back(word.size());
  std::vector<int64_t> pieces;
  std::string candidate;
  for (size_t first = 0; first + 1 < starts.size();) {
    // The longest vocabulary piece from character `first`.
    size_t last = starts.size() - 1;
    for (; last > first; --last) {
      candidate = first == 0 ? std::string() : std::string("##");
      candidate.append(word, starts[first], starts[last] - starts[first]);
      auto it = ids_.find(candidate);
      if (it != ids_.end()) {
        pieces.push_back(it->second);
        break;
      }
    }
    if (last == first) {  // no piece: the whole word is unknown
      out.push_back(unk_);
      return;
    }
    first = last;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<std::string> WordPieceTokenizer::words(const std::string& text) const {
  std::vector<std::string> out;
  // Special tokens are "[...]" with no other ']': at each '[', the text up to the next ']' is one or nothing
  // (transformers matches them leftmost first).
  size_t start = 0;
  for (size_t open = text.find('['); open != std::string::npos; open = text.find('[', open + 1)) {
    const size_t close = text.find(']', open);
    if (close == std::string::npos) break;
    const std::string candidate = text.substr(open, close - open + 1);
    if (!special_.count(candidate)) continue;
    split_words(text.substr(start, open - start), out);
    out.push_back(candidate);
    start = close + 1;
    open = close;
  }
  split_words(text.substr(start), out);
  return out;
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& word : words(text)) {
    // A word from the text never has a '[' with more after it (punctuation is a word of its own), so a word
    // that is a special token was written as one.
    auto special = special_.find(word);
    if (special != special_.end()) {
      ids.push_back(special->second);
    } else {
      word_ids(word, ids);
    }
  }
  return ids;
}

WordPieceTokenizer::Tokens WordPieceTokenizer::tokenize(const std::string& text, int64_t max_length, bool pad) const {
  if (max_length < 2) throw internal_error(fmt::format("WordPieceTokenizer::tokenize: max_length {} < 2", max_length));
  Tokens out{{cls_}, 0};
  const std::vector<int64_t> ids = encode(text);
  out.ids.insert(out.ids.end(), ids.begin(), ids.begin() + std::min<int64_t>(static_cast<int64_t>(ids.size()), max_length - 2));
  out.ids.push_back(sep_);  // [SEP] stays last
  out.real_tokens = static_cast<int64_t>(out.ids.size());
  if (pad) out.ids.resize(static_cast<size_t>(max_length), pad_);
  return out;
}

std::vector<int64_t> WordPieceTokenizer::Tokens::attention_mask() const {
  std::vector<int64_t> mask(ids.size(), 0);
  std::fill(mask.begin(), mask.begin() + real_tokens, 1);
  return mask;
}

}  // namespace asg
