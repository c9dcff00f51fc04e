#include "asg/text/clip_tokenizer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <sstream>

#include "asg/error.h"

namespace asg {

namespace {

constexpr const char* kStartOfText = "<|startoftext|>";
constexpr const char* kEndOfText = "<|endoftext|>";
constexpr const char* kEndOfWord = "</w>";

std::string utf8_of(UChar32 c) {
  std::string out;
  icu::UnicodeString(c).toUTF8String(out);
  return out;
}

// GPT-2's bytes_to_unicode: the printable Latin-1 bytes stand for themselves, the other 68 bytes for the
// code points 256, 257, ... in byte order. Returned in the order the vocabulary lists them (printable
// ranges first, then the rest), as (byte, character) pairs.
std::vector<std::pair<int, std::string>> byte_characters() {
  std::vector<std::pair<int, std::string>> out;
  std::vector<bool> printable(256, false);
  for (auto [lo, hi] : {std::pair{int{'!'}, int{'~'}}, std::pair{0xA1, 0xAC}, std::pair{0xAE, 0xFF}})
    for (int b = lo; b <= hi; ++b) {
      printable[static_cast<size_t>(b)] = true;
      out.emplace_back(b, utf8_of(b));
    }
  int next = 256;
  for (int b = 0; b < 256; ++b)
    if (!printable[static_cast<size_t>(b)]) out.emplace_back(b, utf8_of(next++));
  return out;
}

// Python's html.unescape for what captions contain: numeric references (&#39; &#x27;) and the common
// named ones; anything else stays as written.
std::string unescape_html(const std::string& s) {
  static const std::pair<const char*, const char*> kNamed[] = {{"amp", "&"},  {"lt", "<"},     {"gt", ">"},
                                                              {"quot", "\""}, {"apos", "'"},   {"nbsp", "\xC2\xA0"}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t semi = s[i] == '&' ? s.find(';', i) : std::string::npos;
    if (semi != std::string::npos && semi - i <= 10) {
      const std::string name = s.substr(i + 1, semi - i - 1);
      std::string replacement;
      if (name.size() > 1 && name[0] == '#') {
        const bool hex = name[1] == 'x' || name[1] == 'X';
        const std::string digits = name.substr(hex ? 2 : 1);
        if (!digits.empty() && digits.find_first_not_of(hex ? "0123456789abcdefABCDEF" : "0123456789") == std::string::npos) {
          const long code = std::stol(digits, nullptr, hex ? 16 : 10);
          if (code > 0 && code <= 0x10FFFF) replacement = utf8_of(static_cast<UChar32>(code));
        }
      } else {
        for (const auto& [n, r] : kNamed)
          if (name == n) replacement = r;
      }
      if (!replacement.empty()) {
        out += replacement;
        i = semi + 1;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

// What ftfy.fix_text (6.x, default settings) does to a caption, except its mojibake repair (fix_encoding):
// each step as ftfy's, repeated until nothing changes, as ftfy does.
icu::UnicodeString ftfy_fix(const std::string& text) {
  // unescape_html = "auto": only when the text has no '<' (then it may be markup, and is left alone).
  const bool unescape = text.find('<') == std::string::npos;
  // fix_c1_controls: a C1 control U+0080..U+009F is a Windows-1252 byte decoded as Latin-1 (ftfy's
  // "sloppy" codec keeps the five bytes Windows-1252 leaves undefined).
  static const char16_t kWindows1252[32] = {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
                                            0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
                                            0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};
  static const std::pair<UChar32, const char16_t*> kLigatures[] = {
      {0x0132, u"IJ"}, {0x0133, u"ij"}, {0x0149, u"\u02BCn"}, {0x01F1, u"DZ"}, {0x01F2, u"Dz"}, {0x01F3, u"dz"},
      {0x01C4, u"D\u017D"}, {0x01C5, u"D\u017E"}, {0x01C6, u"d\u017E"}, {0x01C7, u"LJ"}, {0x01C8, u"Lj"}, {0x01C9, u"lj"},
      {0x01CA, u"NJ"}, {0x01CB, u"Nj"}, {0x01CC, u"nj"}, {0xFB00, u"ff"}, {0xFB01, u"fi"}, {0xFB02, u"fl"},
      {0xFB03, u"ffi"}, {0xFB04, u"ffl"}, {0xFB05, u"\u017Ft"}, {0xFB06, u"st"}};
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(status);
  if (U_FAILURE(status)) throw internal_error(std::string("ICU: no NFC/NFKC normalizer: ") + u_errorName(status));
  static const std::unique_ptr<icu::RegexPattern> kTerminalEscape(icu::RegexPattern::compile(u"\x1B\\[((?:\\d|;)*)([a-zA-Z])", 0, status));
  if (U_FAILURE(status) || !kTerminalEscape) throw internal_error("ICU: cannot compile the terminal-escape pattern");

  std::string current = text;
  icu::UnicodeString u;
  for (int round = 0; round < 16; ++round) {
    const std::string before = current;
    if (unescape) current = unescape_html(current);
    u = icu::UnicodeString::fromUTF8(current);
    icu::UnicodeString out;
    for (int32_t i = 0; i < u.length();) {
      const UChar32 c = u.char32At(i);
      i += U16_LENGTH(c);
      if (c >= 0x80 && c <= 0x9F) {  // fix_c1_controls
        out.append(static_cast<UChar32>(kWindows1252[c - 0x80]));
        continue;
      }
      bool replaced = false;
      for (const auto& [from, to] : kLigatures)  // fix_latin_ligatures
        if (c == from) {
          out.append(icu::UnicodeString(to));
          replaced = true;
        }
      if (replaced) continue;
      if (c == 0x3000) {  // fix_character_width: the ideographic space ...
        out.append(u' ');
        continue;
      }
      if (c >= 0xFF01 && c <= 0xFFEF) {  // ... and the half- and full-width forms, by NFKC
        out.append(nfkc->normalize(icu::UnicodeString(c), status));
        continue;
      }
      if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) {  // uncurl_quotes
        out.append(u'\'');
        continue;
      }
      if (c >= 0x201C && c <= 0x201F) {
        out.append(u'"');
        continue;
      }
      if (c == 0x2028 || c == 0x2029 || c == 0x0085) {  // fix_line_breaks (\r is collapsed with the spaces later)
        out.append(u'\n');
        continue;
      }
      const bool control = c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
                           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
      if (control && c != 0x1B) continue;  // remove_control_chars (ESC goes with its terminal escape, next)
      out.append(c);
    }
    std::unique_ptr<icu::RegexMatcher> escapes(kTerminalEscape->matcher(out, status));
    out = escapes->replaceAll(u"", status);  // remove_terminal_escapes
    out.findAndReplace(icu::UnicodeString(static_cast<UChar32>(0x1B)), u"");     // an ESC without an escape sequence is a control character
    u = nfc->normalize(out, status);         // normalization = "NFC"
    if (U_FAILURE(status)) throw internal_error(std::string("ICU: ") + u_errorName(status));
    u.toUTF8String(current = std::string());
    if (current == before) break;
  }
  return u;
}

// ftfy's fixes, unescaped twice, whitespace collapsed and trimmed, lower-cased: open_clip's basic_clean +
// whitespace_clean + lower.
icu::UnicodeString clean(const std::string& text) {
  std::string fixed;
  ftfy_fix(text).toUTF8String(fixed);
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(unescape_html(unescape_html(fixed)));
  UErrorCode status = U_ZERO_ERROR;
  static const std::unique_ptr<icu::RegexPattern> kSpaces(icu::RegexPattern::compile(u"\\s+", 0, status));
  if (U_FAILURE(status) || !kSpaces) throw internal_error("ICU: cannot compile the whitespace pattern");
  std::unique_ptr<icu::RegexMatcher> m(kSpaces->matcher(u, status));
  icu::UnicodeString collapsed = m->replaceAll(u" ", status);
  if (U_FAILURE(status)) throw internal_error(std::string("ICU: ") + u_errorName(status));
  return collapsed.trim().toLower(icu::Locale::getRoot());
}

// CLIP's pre-tokenizer pattern (case-insensitive, as OpenAI compiles it).
const icu::RegexPattern& split_pattern() {
  static const std::unique_ptr<icu::RegexPattern> pattern = [] {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<icu::RegexPattern> p(icu::RegexPattern::compile(
        u"<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
        UREGEX_CASE_INSENSITIVE, status));
    if (U_FAILURE(status) || !p) throw internal_error(std::string("ICU: cannot compile CLIP's pattern: ") + u_errorName(status));
    return p;
  }();
  return *pattern;
}

// The whole content of a file, gzip-compressed or not (libarchive's raw format with every filter).
std::string read_maybe_compressed(const std::filesystem::path& path) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  std::string out;
  struct archive_entry* entry = nullptr;
  if (archive_read_open_filename(a, path.c_str(), 1 << 16) != ARCHIVE_OK || archive_read_next_header(a, &entry) != ARCHIVE_OK) {
    const std::string why = archive_error_string(a) ? archive_error_string(a) : "unreadable";
    archive_read_free(a);
    throw config_error(fmt::format("{}: cannot read the BPE merges file: {}", path.string(), why));
  }
  char buffer[1 << 16];
  for (la_ssize_t n; (n = archive_read_data(a, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<size_t>(n));
  archive_read_free(a);
  return out;
}

}  // namespace

ClipTokenizer ClipTokenizer::from_merges_file(const std::filesystem::path& path, int64_t max_merges) {
  if (!std::filesystem::is_regular_file(path))
    throw config_error(fmt::format("{}: no BPE merges file here (CLIP's is bpe_simple_vocab_16e6.txt.gz)", path.string()));
  std::istringstream lines(read_maybe_compressed(path));
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  int64_t number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (number == 1) continue;  // the version header ("#version: 0.2")
    if (max_merges > 0 && static_cast<int64_t>(merges.size()) == max_merges) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() || line.find(' ', space + 1) != std::string::npos)
      throw config_error(fmt::format("{}:{}: '{}' is not a merge (valid: two symbols separated by one space, e.g. \"t h\")",
                                     path.string(), number, line));
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  if (merges.empty()) throw config_error(fmt::format("{}: no merges after the header line", path.string()));
  return ClipTokenizer(std::move(merges));
}

ClipTokenizer::ClipTokenizer(std::vector<std::pair<std::string, std::string>> merges) {
  byte_symbols_.resize(256);
  const auto bytes = byte_characters();
  for (const auto& [b, c] : bytes) byte_symbols_[static_cast<size_t>(b)] = c;
  for (const auto& [b, c] : bytes) tokens_.push_back(c);
  for (const auto& [b, c] : bytes) tokens_.push_back(c + kEndOfWord);
  for (size_t r = 0; r < merges.size(); ++r) {
    ranks_[merges[r]] = static_cast<int64_t>(r);  // a repeated merge keeps its last rank, as Python's dict does
    tokens_.push_back(merges[r].first + merges[r].second);
  }
  start_ = static_cast<int64_t>(tokens_.size());
  tokens_.push_back(kStartOfText);
  end_ = static_cast<int64_t>(tokens_.size());
  tokens_.push_back(kEndOfText);
  // A token listed twice (a merge spelling a byte character, say) gets its last id, as OpenAI's
  // dict(zip(vocab, range(len(vocab)))) does.
  for (size_t i = 0; i < tokens_.size(); ++i) ids_[tokens_[i]] = static_cast<int64_t>(i);
}

std::vector<std::string> ClipTokenizer::bpe(const std::string& piece) const {
  // Symbols: one per byte (its printable character), the last marked end-of-word.
  std::vector<std::string> word;
  for (unsigned char b : piece) word.push_back(byte_symbols_[b]);
  if (word.empty()) return word;
  word.back() += kEndOfWord;
  while (word.size() > 1) {
    // The adjacent pair with the lowest merge rank; none left: done.
    int64_t best = std::numeric_limits<int64_t>::max();
    const std::pair<std::string, std::string>* best_pair = nullptr;
    std::pair<std::string, std::string> pair;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      pair = {word[i], word[i + 1]};
      auto it = ranks_.find(pair);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        best_pair = &it->first;
      }
    }
    if (!best_pair) break;
    // Merge every occurrence of that pair, left to right.
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == best_pair->first && word[i + 1] == best_pair->second) {
        merged.push_back(word[i] + word[i + 1]);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word = std::move(merged);
  }
  return word;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  const icu::UnicodeString cleaned = clean(text);
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::RegexMatcher> m(split_pattern().matcher(cleaned, status));
  if (U_FAILURE(status)) throw internal_error(std::string("ICU: ") + u_errorName(status));
  std::vector<int64_t> ids;
  while (m->find(status)) {
    std::string piece;
    m->group(status).toUTF8String(piece);
    for (const std::string& symbol : bpe(piece)) {
      auto it = ids_.find(symbol);
      if (it == ids_.end()) throw internal_error("BPE produced a symbol outside the vocabulary: " + symbol);
      ids.push_back(it->second);
    }
  }
  if (U_FAILURE(status)) throw internal_error(std::string("ICU: ") + u_errorName(status));
  return ids;
}

std::vector<int64_t> ClipTokenizer::tokenize(const std::string& text, int64_t context_length, bool truncate) const {
  if (context_length < 2) throw internal_error("ClipTokenizer::tokenize: context_length < 2");
  std::vector<int64_t> ids{start_};
  for (int64_t id : encode(text)) ids.push_back(id);
  ids.push_back(end_);
  if (static_cast<int64_t>(ids.size()) > context_length) {
    if (!truncate)
      throw data_error(fmt::format("text '{}' is {} tokens, longer than the context of {}", text, ids.size(), context_length));
    ids.resize(static_cast<size_t>(context_length));
    ids.back() = end_;
  }
  ids.resize(static_cast<size_t>(context_length), 0);
  return ids;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string symbols;
  for (int64_t id : ids) {
    if (id == end_) break;  // what follows is padding
    if (id == start_ || id < 0 || id >= vocab_size()) continue;
    symbols += tokens_[static_cast<size_t>(id)];
  }
  // Printable characters back to bytes; "</w>" ends a word.
  std::unordered_map<std::string, char> byte_of;
  for (int b = 0; b < 256; ++b) byte_of[byte_symbols_[static_cast<size_t>(b)]] = static_cast<char>(b);
  std::string out;
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(symbols);
  for (int32_t i = 0; i < u.length();) {
    if (u.compare(i, 4, icu::UnicodeString(kEndOfWord)) == 0) {
      out += ' ';
      i += 4;
      continue;
    }
    const UChar32 c = u.char32At(i);
    auto it = byte_of.find(utf8_of(c));
    if (it != byte_of.end()) out += it->second;
    i += U16_LENGTH(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace asg
