#include "asg/data/manifest.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <limits>
#include <set>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/media/sticker_file.h"
#include "asg/files.h"

#include <fstream>

namespace asg {

namespace fs = std::filesystem;

namespace {
std::string options_fingerprint(const ManifestOptions& o, ManifestFormat format);  // what an index was read with
}  // namespace

const EnumNames<ManifestFormat>& manifest_format_names() {
  static const EnumNames<ManifestFormat> names{{ManifestFormat::Auto, "auto"},
                                               {ManifestFormat::Jsonl, "jsonl"},
                                               {ManifestFormat::Csv, "csv"},
                                               {ManifestFormat::Vsd2m, "vsd2m"},
                                               {ManifestFormat::Folder, "folder"},
                                               {ManifestFormat::Shards, "shards"}};
  return names;
}

const char* split_name_of(SplitName split) {
  return split == SplitName::Train ? "train" : split == SplitName::Validation ? "validation" : "test";
}

void ManifestOptions::set_split_fractions(const std::vector<double>& fractions) {
  if (fractions.size() != 2 || fractions[0] < 0 || fractions[1] < 0 || fractions[0] + fractions[1] > 1.0 + 1e-9)
    throw config_error(fmt::format("split_fractions = [{}]: expected [train, validation], each >= 0, adding up to at most 1 "
                                   "(test takes the rest)",
                                   fmt::join(fractions, ", ")));
  train_fraction = fractions[0];
  validation_fraction = fractions[1];
}

std::vector<ParamSpec> corpus_params() {
  return {
      float_list_param("split_fractions", {0.98, 0.01},
                       "[train, validation] shares of the hash split, for samples whose record names no split; test takes "
                       "the rest")
          .range(0, 1)
          .length(2, 2),
      string_param("vocabulary", "", "name of the label vocabulary the labels come from (metrics that read labels need it)"),
      string_param("vocabulary_version", "", "its version"),
  };
}

Vocabulary corpus_vocabulary(const Params& params) { return {params.str("vocabulary"), params.str("vocabulary_version")}; }

SplitName split_of(std::string_view id, double train_fraction, double validation_fraction) {
  // FNV-1a's high bits barely move between similar short ids ("id1", "id2"): splitmix64 mixes them.
  const double u = static_cast<double>(splitmix64(fnv1a64(id)) >> 11) * 0x1.0p-53;
  if (u < train_fraction) return SplitName::Train;
  if (u < train_fraction + validation_fraction) return SplitName::Validation;
  return SplitName::Test;
}

std::optional<std::string> unusable_path(const fs::path& root, const std::string& relative, bool check_file) {
  if (relative.empty()) return "an empty path";
  const fs::path p(relative);
  if (p.is_absolute()) return fmt::format("'{}' is an absolute path (valid: a path relative to the dataset root)", relative);
  const fs::path normal = p.lexically_normal();
  if (!normal.empty() && *normal.begin() == "..")
    return fmt::format("'{}' leaves the dataset root {} (valid: a path inside it)", relative, root.string());
  if (!check_file) return std::nullopt;
  const fs::path full = root / normal;
  std::error_code ec;
  const auto status = fs::status(full, ec);
  if (ec || !fs::exists(status)) return fmt::format("'{}': no such file under {}", relative, root.string());
  if (!fs::is_regular_file(status)) return fmt::format("'{}' is not a regular file", relative);
  // A symlink (anywhere along the path) may point out of the root: compare where it really is.
  const fs::path real = fs::canonical(full, ec);
  const fs::path real_root = fs::canonical(root, ec);
  if (!ec) {
    const auto rel = real.lexically_relative(real_root);
    if (rel.empty() || *rel.begin() == "..")
      return fmt::format("'{}' is a symlink to {}, outside the dataset root {}", relative, real.string(), real_root.string());
  }
  if (fs::file_size(full, ec) == 0 && !ec) return fmt::format("'{}': the file is empty", relative);
  return std::nullopt;
}

std::vector<std::pair<int64_t, std::vector<std::string>>> parse_csv(std::string_view text, const std::string& name) {
  std::vector<std::pair<int64_t, std::vector<std::string>>> records;
  std::vector<std::string> fields;
  std::string field;
  int64_t line = 1, record_line = 1;
  bool quoted = false, any = false;
  size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // a UTF-8 byte-order mark (spreadsheet exports)
  auto end_record = [&] {
    fields.push_back(std::move(field));
    field.clear();
    if (!(fields.size() == 1 && fields[0].empty())) records.emplace_back(record_line, std::move(fields));  // skip blank lines
    fields.clear();
    any = false;
  };
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (!any) record_line = line;
    any = true;
    if (c == '"' && field.empty()) quoted = true;
    else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      if (!field.empty() && field.back() == '\r') field.pop_back();
      end_record();
      ++line;
    } else {
      field += c;
    }
  }
  if (quoted) throw data_error(fmt::format("{}:{}: a quoted field is never closed", name, record_line));
  if (any) end_record();
  return records;
}

std::string_view Manifest::view(const Entry& e, int field) const {
  const uint32_t lengths[4] = {e.id, e.path, e.caption, e.extra};
  uint64_t offset = e.offset;
  for (int i = 0; i < field; ++i) offset += lengths[i];
  return std::string_view(arena_).substr(offset, lengths[field]);
}

// extra: "frames\x1ekeyframes(comma-separated)\x1ekey\x1fvalue\x1ekey\x1fvalue..." (separators that text fields
// cannot hold: they were refused while reading).
void Manifest::add(std::string_view id, std::string_view path, std::string_view caption, SplitName split, int64_t line,
                   int64_t frames, const std::vector<int64_t>& keyframes, const std::map<std::string, std::string>& labels) {
  std::string extra = std::to_string(frames) + '\x1e' + fmt::format("{}", fmt::join(keyframes, ","));
  for (const auto& [k, v] : labels) extra += '\x1e' + k + '\x1f' + v;
  auto length = [](std::string_view text) {
    if (text.size() > std::numeric_limits<uint32_t>::max()) throw data_error("a manifest field longer than 4 GiB");
    return static_cast<uint32_t>(text.size());
  };
  Entry e;
  e.offset = arena_.size();
  e.id = length(id);
  e.path = length(path);
  e.caption = length(caption);
  e.extra = length(extra);
  arena_.append(id).append(path).append(caption).append(extra);
  e.line = static_cast<uint32_t>(line);
  e.split = static_cast<uint8_t>(split);
  entries_.push_back(e);
}

Manifest::Row Manifest::row(size_t i) const {
  const Entry& e = entries_.at(i);
  Row r;
  r.id = view(e, 0);
  r.path = view(e, 1);
  r.caption = view(e, 2);
  r.split = static_cast<SplitName>(e.split);
  r.line = e.line;
  const std::string_view extra = view(e, 3);
  size_t start = 0;
  for (int part = 0; start <= extra.size(); ++part) {
    size_t end = extra.find('\x1e', start);
    if (end == std::string_view::npos) end = extra.size();
    const std::string_view piece = extra.substr(start, end - start);
    if (part == 0) {
      r.frames = std::stoll(std::string(piece));
    } else if (part == 1) {
      size_t s = 0;
      while (s < piece.size()) {
        size_t comma = piece.find(',', s);
        if (comma == std::string_view::npos) comma = piece.size();
        r.keyframes.push_back(std::stoll(std::string(piece.substr(s, comma - s))));
        s = comma + 1;
      }
    } else {
      const size_t sep = piece.find('\x1f');
      r.labels.emplace(std::string(piece.substr(0, sep)), std::string(piece.substr(sep + 1)));
    }
    start = end + 1;
  }
  return r;
}

std::vector<std::string> Manifest::common_label_keys() const {
  std::set<std::string> common;
  for (size_t i = 0; i < entries_.size(); ++i) {
    std::set<std::string> keys;
    for (const auto& [k, v] : row(i).labels) keys.insert(k);
    if (i == 0) {
      common = std::move(keys);
      continue;
    }
    std::set<std::string> both;
    std::set_intersection(common.begin(), common.end(), keys.begin(), keys.end(), std::inserter(both, both.end()));
    common = std::move(both);
  }
  return {common.begin(), common.end()};
}

size_t Manifest::memory_bytes() const {
  size_t rejected = 0;
  for (const auto& r : rejected_) rejected += sizeof(r) + r.id.capacity() + r.reason.capacity();
  return arena_.capacity() + entries_.capacity() * sizeof(Entry) + rejected;
}

namespace {

const std::set<std::string>& sticker_extensions() {
  static const std::set<std::string> e{".gif", ".webp", ".png", ".jpg", ".jpeg", ".bmp", ".mp4", ".webm"};
  return e;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<SplitName> parse_split(const std::string& value) {
  const std::string v = lower(value);
  if (v == "train") return SplitName::Train;
  if (v == "validation" || v == "val" || v == "valid") return SplitName::Validation;
  if (v == "test") return SplitName::Test;
  return std::nullopt;
}

bool clean_text(std::string_view s) { return s.find('\x1e') == std::string_view::npos && s.find('\x1f') == std::string_view::npos; }

// One record of any format, as fields, before it becomes a row.
struct Record {
  int64_t line = 0;
  std::string where;  // "file:line"
  std::string id, path, caption, split, fmt, subset;
  bool has_subset = false;
  int64_t frames = -1;
  std::vector<int64_t> keyframes;
  std::map<std::string, std::string> labels;
};

}  // namespace

// Turns records of any format into rows (Manifest::add) or rejected rows.
class ManifestReader {
 public:
  ManifestReader(const fs::path& source, const ManifestOptions& options, Manifest& out, std::vector<RejectedRow>& rejected)
      : source_(source), options_(options), out_(out), rejected_(rejected) {}

  // A field's string value; the error names the record and what would be valid.
  static std::string describe(const nlohmann::json& v) {
    std::string d = v.dump();
    if (d.size() > 40) d = d.substr(0, 37) + "...";
    return fmt::format("{} {}", v.type_name(), d);
  }

  void from_json(const nlohmann::json& j, int64_t line, bool vsd2m) {
    Record r;
    r.line = line;
    r.where = in_array_ ? fmt::format("{}: array element {}", source_.string(), line - 1) : fmt::format("{}:{}", source_.string(), line);
    if (!j.is_object()) throw data_error(fmt::format("{}: expected a JSON object per record, got {}", r.where, describe(j)));
    const std::string& id_key = options_.id_field;
    const std::string& path_key = options_.path_field;
    auto label = [&]() {
      if (j.contains(id_key) && j[id_key].is_string()) return fmt::format("record {}", j[id_key].get<std::string>());
      return std::string("the record");
    };
    auto string_field = [&](const std::string& key, bool required, std::string& into) {
      if (!j.contains(key)) {
        if (required)
          throw data_error(fmt::format("{}: {} has no field '{}' (fields present: {})", r.where, label(), key,
                                       fmt::join(keys(j), ", ")));
        return false;
      }
      if (!j[key].is_string())
        throw data_error(fmt::format("{}: {}: field '{}' must be a string, got {}", r.where, label(), key, describe(j[key])));
      into = j[key].get<std::string>();
      if (!clean_text(into))
        throw data_error(fmt::format("{}: {}: field '{}' holds ASCII record/unit separators (0x1e/0x1f)", r.where, label(), key));
      return true;
    };
    string_field(path_key, true, r.path);
    if (!string_field(id_key, vsd2m, r.id)) r.id = r.path;
    string_field(options_.caption_field, true, r.caption);
    string_field(options_.split_field, false, r.split);
    if (vsd2m) {
      string_field("fmt", true, r.fmt);
      if (j.contains("nframes")) {
        if (!j["nframes"].is_number_integer() || j["nframes"].get<int64_t>() < 0)
          throw data_error(fmt::format("{}: {}: field 'nframes' must be a non-negative integer, got {}", r.where, label(),
                                       describe(j["nframes"])));
        r.frames = j["nframes"].get<int64_t>();
      }
      if (j.contains("keyframe_idx")) {
        const auto& k = j["keyframe_idx"];
        bool ok = k.is_array();
        for (const auto& v : k) ok = ok && v.is_number_integer() && v.get<int64_t>() >= 0;
        if (!ok)
          throw data_error(fmt::format("{}: {}: field 'keyframe_idx' must be a list of non-negative integers, got {}", r.where,
                                       label(), describe(k)));
        for (const auto& v : k) r.keyframes.push_back(v.get<int64_t>());
        if (r.frames >= 0)
          for (int64_t f : r.keyframes)
            if (f >= r.frames)
              throw data_error(fmt::format("{}: {}: keyframe_idx holds {} but nframes is {} (valid: 0 .. {})", r.where,
                                           label(), f, r.frames, r.frames - 1));
      }
      std::string meanings;
      if (j.contains("meanings")) {
        if (j["meanings"].is_string()) meanings = j["meanings"].get<std::string>();
        else if (j["meanings"].is_array()) {
          std::vector<std::string> parts;
          for (const auto& m : j["meanings"])
            if (m.is_string()) parts.push_back(m.get<std::string>());
          meanings = fmt::format("{}", fmt::join(parts, "; "));
        }
        if (!meanings.empty() && clean_text(meanings)) r.labels["meanings"] = meanings;
      }
      if (options_.subset != "all") r.has_subset = string_field(options_.subset_field, true, r.subset);
    }
    if (j.contains("labels")) {
      if (!j["labels"].is_object())
        throw data_error(fmt::format("{}: {}: field 'labels' must be an object of strings, got {}", r.where, label(),
                                     describe(j["labels"])));
      for (const auto& [k, v] : j["labels"].items()) {
        if (!v.is_string())
          throw data_error(fmt::format("{}: {}: labels.{} must be a string, got {}", r.where, label(), k, describe(v)));
        r.labels[k] = v.get<std::string>();
      }
    }
    for (const auto& key : options_.label_fields) {
      std::string value;
      if (!j.contains(key))
        throw data_error(fmt::format("{}: {} has no label field '{}' (label_fields)", r.where, label(), key));
      if (j[key].is_string()) value = j[key].get<std::string>();
      else if (j[key].is_number() || j[key].is_boolean()) value = j[key].dump();
      else throw data_error(fmt::format("{}: {}: label field '{}' must be a string, number or boolean, got {}", r.where, label(), key, describe(j[key])));
      r.labels[key] = value;
    }
    accept(std::move(r));
  }

  void from_csv_row(const std::vector<std::string>& header, const std::vector<std::string>& fields, int64_t line) {
    Record r;
    r.line = line;
    r.where = fmt::format("{}:{}", source_.string(), line);
    if (fields.size() != header.size())
      throw data_error(fmt::format("{}: {} fields, but the header has {} ({})", r.where, fields.size(), header.size(),
                                   fmt::join(header, ", ")));
    auto column = [&](const std::string& key) -> std::optional<std::string> {
      for (size_t i = 0; i < header.size(); ++i)
        if (header[i] == key) return fields[i];
      return std::nullopt;
    };
    r.path = *column(options_.path_field);
    r.caption = *column(options_.caption_field);
    r.id = column(options_.id_field).value_or(r.path);
    if (r.id.empty()) r.id = r.path;
    r.split = column(options_.split_field).value_or("");
    for (const auto& key : options_.label_fields) r.labels[key] = *column(key);
    for (const auto& f : fields)
      if (!clean_text(f)) throw data_error(fmt::format("{}: a field holds ASCII record/unit separators (0x1e/0x1f)", r.where));
    accept(std::move(r));
  }

  void from_folder_file(const fs::path& file) {
    Record r;
    const fs::path rel = file.lexically_relative(out_root_);
    r.path = rel.generic_string();
    r.id = (rel.parent_path() / rel.stem()).generic_string();
    r.where = file.string();
    fs::path sidecar = file;
    sidecar.replace_extension(".txt");
    if (!fs::exists(sidecar)) {
      rejected_.push_back({r.id, fmt::format("'{}' has no caption file {}", r.path, sidecar.filename().string())});
      return;
    }
    r.caption = read_text_file(sidecar);
    while (!r.caption.empty() && std::isspace(static_cast<unsigned char>(r.caption.back()))) r.caption.pop_back();
    if (!clean_text(r.caption)) {
      rejected_.push_back({r.id, fmt::format("{} holds ASCII record/unit separators (0x1e/0x1f)", sidecar.string())});
      return;
    }
    accept(std::move(r));
  }

  void set_root(const fs::path& root) { out_root_ = root; }
  void set_in_array() { in_array_ = true; }

 private:
  static std::vector<std::string> keys(const nlohmann::json& j) {
    std::vector<std::string> k;
    for (const auto& [key, value] : j.items()) k.push_back(key);
    return k;
  }

  void accept(Record r) {
    if (!ids_.insert(r.id).second)
      throw data_error(fmt::format("{}: id '{}' appears twice in the manifest (ids must be unique)", r.where, r.id));
    if (!options_.formats.empty() && !r.fmt.empty() &&
        std::find(options_.formats.begin(), options_.formats.end(), lower(r.fmt)) == options_.formats.end())
      return;  // filtered out, as VSD2M's code keeps only fmt == "gif"
    if (options_.subset != "all" && lower(r.subset) != options_.subset) return;
    SplitName split;
    if (!r.split.empty()) {
      const auto parsed = parse_split(r.split);
      if (!parsed)
        throw data_error(fmt::format("{}: record {}: split '{}' (valid: train, validation (or val), test)", r.where, r.id,
                                     r.split));
      split = *parsed;
    } else {
      split = split_of(r.id, options_.train_fraction, options_.validation_fraction);
    }
    if (auto why = unusable_path(out_root_, r.path, options_.check_files)) {
      rejected_.push_back({r.id, *why});
      return;
    }
    const std::string normal = fs::path(r.path).lexically_normal().generic_string();
    out_.add(r.id, normal, r.caption, split, r.line, r.frames, r.keyframes, r.labels);
  }

  fs::path source_;
  const ManifestOptions& options_;
  Manifest& out_;
  std::vector<RejectedRow>& rejected_;
  fs::path out_root_;
  bool in_array_ = false;
  std::set<std::string> ids_;
};

Manifest Manifest::read(const fs::path& source, const ManifestOptions& options) {
  if (options.format == ManifestFormat::Shards ||
      (options.format == ManifestFormat::Auto && lower(source.extension().string()) == ".tar"))
    return read_shards({source.string()}, options);
  Manifest m = read_rows(source, options);
  m.arena_.shrink_to_fit();  // what it grew by doubling: up to half of it
  m.entries_.shrink_to_fit();
  return m;
}

Manifest Manifest::read_rows(const fs::path& source, const ManifestOptions& given) {
  ManifestOptions options = given;
  if (options.subset != "all" && options.subset != "real" && options.subset != "cartoon")
    throw config_error(fmt::format("subset = \"{}\" (valid: all, real, cartoon)", options.subset));
  ManifestFormat format = options.format;
  if (!fs::exists(source)) throw data_error(fmt::format("{}: no such manifest file or folder", source.string()));
  if (format == ManifestFormat::Auto)
    format = fs::is_directory(source) ? ManifestFormat::Folder
             : lower(source.extension().string()) == ".csv" ? ManifestFormat::Csv
                                                            : ManifestFormat::Jsonl;
  if ((format == ManifestFormat::Folder) != fs::is_directory(source))
    throw config_error(fmt::format("{}: format \"{}\" needs {}", source.string(), manifest_format_names().name(format),
                                   format == ManifestFormat::Folder ? "a directory" : "a manifest file, not a directory"));
  const bool records = format == ManifestFormat::Vsd2m;
  if (options.path_field.empty()) options.path_field = records ? "visual_path" : "path";
  if (options.caption_field.empty()) options.caption_field = records ? "eng_cap" : "caption";
  if (options.id_field.empty()) options.id_field = records ? "md5" : "id";
  Manifest m;
  m.source_ = source;
  m.options_fingerprint_ = options_fingerprint(options, format);
  m.root_ = !options.root.empty() ? options.root : format == ManifestFormat::Folder ? source : source.parent_path();
  if (m.root_.empty()) m.root_ = ".";
  if (!fs::is_directory(m.root_)) throw data_error(fmt::format("{}: the dataset root is not a directory", m.root_.string()));
  ManifestReader reader(source, options, m, m.rejected_);
  reader.set_root(m.root_);

  if (format == ManifestFormat::Folder) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(source, fs::directory_options::skip_permission_denied)) {
      if (!entry.is_regular_file() && !entry.is_symlink()) continue;
      if (sticker_extensions().count(lower(entry.path().extension().string()))) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) reader.from_folder_file(f);
    return m;
  }

  if (format == ManifestFormat::Csv) {
    const std::string text = read_text_file(source);
    auto records = parse_csv(text, source.string());
    if (records.empty()) throw data_error(fmt::format("{}: empty CSV (expected a header row)", source.string()));
    const std::vector<std::string> header = records.front().second;
    for (const auto& required : {options.path_field, options.caption_field})
      if (std::find(header.begin(), header.end(), required) == header.end())
        throw data_error(fmt::format("{}:{}: the header has no column '{}' (columns: {})", source.string(),
                                     records.front().first, required, fmt::join(header, ", ")));
    for (const auto& key : options.label_fields)
      if (std::find(header.begin(), header.end(), key) == header.end())
        throw data_error(fmt::format("{}:{}: the header has no label column '{}' (columns: {})", source.string(),
                                     records.front().first, key, fmt::join(header, ", ")));
    for (size_t i = 1; i < records.size(); ++i) reader.from_csv_row(header, records[i].second, records[i].first);
    return m;
  }

  const bool vsd2m = format == ManifestFormat::Vsd2m;
  std::ifstream in(source, std::ios::binary);
  if (!in) throw data_error(fmt::format("{}: cannot open the manifest", source.string()));
  // A JSON array is parsed whole; JSONL line by line, so a 2M-line manifest is never in memory at once.
  char first = 0;
  auto skippable = [](unsigned char c) { return std::isspace(c) || c == 0xEF || c == 0xBB || c == 0xBF; };  // and a BOM
  while (in.get(first) && skippable(static_cast<unsigned char>(first))) {
  }
  if (first == '[') {
    nlohmann::json all;
    try {
      in.unget();
      all = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw data_error(fmt::format("{}: not valid JSON: {}", source.string(), e.what()));
    }
    reader.set_in_array();
    for (size_t i = 0; i < all.size(); ++i) reader.from_json(all[i], static_cast<int64_t>(i) + 1, vsd2m);
    return m;
  }
  in.clear();
  in.seekg(0);
  int64_t line = 0;
  std::string l;
  while (std::getline(in, l)) {
    ++line;
    if (line == 1 && l.rfind("\xEF\xBB\xBF", 0) == 0) l.erase(0, 3);  // a UTF-8 byte-order mark
    if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l);
    } catch (const nlohmann::json::parse_error& e) {
      throw data_error(fmt::format("{}:{}: not valid JSON: {}", source.string(), line, e.what()));
    }
    reader.from_json(j, line, vsd2m);
  }
  return m;
}

namespace {

constexpr char kIndexMagic[] = "ASG-MANIFEST-INDEX 1\n";

// What the rows depend on besides the manifest's bytes.
std::string options_fingerprint(const ManifestOptions& o, ManifestFormat format) {
  nlohmann::json j = {{"format", manifest_format_names().name(format)},
                      {"root", o.root.string()},
                      {"path_field", o.path_field},
                      {"caption_field", o.caption_field},
                      {"id_field", o.id_field},
                      {"split_field", o.split_field},
                      {"label_fields", o.label_fields},
                      {"formats", o.formats},
                      {"subset", o.subset},
                      {"subset_field", o.subset_field},
                      {"train_fraction", o.train_fraction},
                      {"validation_fraction", o.validation_fraction},
                      {"check_files", o.check_files}};
  return j.dump();
}

nlohmann::json source_stamp(const fs::path& source) {
  std::error_code ec;
  const auto size = fs::is_directory(source) ? 0 : static_cast<int64_t>(fs::file_size(source, ec));
  const auto mtime = fs::last_write_time(source, ec).time_since_epoch().count();
  return {{"size", size}, {"mtime", static_cast<int64_t>(mtime)}};
}

// What the rows were read from: the manifest, or every shard (path, size, modification time).
nlohmann::json stamp_of(const fs::path& source, const std::vector<fs::path>& shards) {
  if (shards.empty()) return {{"source", fs::absolute(source).string()}, {"file", source_stamp(source)}};
  nlohmann::json all = nlohmann::json::array();
  for (const auto& s : shards) all.push_back({fs::absolute(s).string(), source_stamp(s)});
  return {{"shards", all}};
}

ManifestOptions with_default_fields(ManifestOptions options, ManifestFormat format) {
  const bool records = format == ManifestFormat::Vsd2m;
  if (options.path_field.empty()) options.path_field = records ? "visual_path" : "path";
  if (options.caption_field.empty()) options.caption_field = records ? "eng_cap" : "caption";
  if (options.id_field.empty()) options.id_field = records ? "md5" : "id";
  return options;
}

}  // namespace

ShardSampleInfo describe_shard_sample(const ShardSample& s, const fs::path& shard, const std::string& caption_field) {
  static const char* const kMedia[] = {"gif", "webp", "png", "jpg", "jpeg", "bmp", "mp4", "webm"};
  ShardSampleInfo info;
  info.id = fmt::format("{}:{}", shard.filename().string(), s.key);
  const std::string where = shard.string();
  for (const char* ext : kMedia)
    if (info.media.empty() && s.parts.count(ext)) info.media = ext;
  if (!s.refused.empty()) {
    info.problem = fmt::format("{}: {}", where, s.refused);
    return info;
  }
  if (info.media.empty()) {
    info.problem = fmt::format("{}: sample '{}' has no sticker part (one of: gif, webp, png, jpg, jpeg, bmp, mp4, webm)", where, s.key);
    return info;
  }
  if (auto it = s.parts.find("json"); it != s.parts.end()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(it->second.begin(), it->second.end());
    } catch (const nlohmann::json::parse_error& e) {
      info.problem = fmt::format("{}: {}.json is not valid JSON: {}", where, s.key, e.what());
      return info;
    }
    if (!j.is_object()) {
      info.problem = fmt::format("{}: {}.json is not a JSON object", where, s.key);
      return info;
    }
    if (j.contains(caption_field) && j[caption_field].is_string()) info.caption = j[caption_field].get<std::string>();
    if (j.contains("split") && j["split"].is_string()) {
      info.split = parse_split(j["split"].get<std::string>());
      if (!info.split) {
        info.problem = fmt::format("{}: {}.json: split '{}' (valid: train, validation (or val), test)", where, s.key,
                                   j["split"].get<std::string>());
        return info;
      }
    }
    if (j.contains("labels") && j["labels"].is_object())
      for (const auto& [k, v] : j["labels"].items())
        if (v.is_string()) info.labels[k] = v.get<std::string>();
  }
  if (info.caption.empty())
    if (auto it = s.parts.find("txt"); it != s.parts.end()) {
      info.caption.assign(it->second.begin(), it->second.end());
      while (!info.caption.empty() && std::isspace(static_cast<unsigned char>(info.caption.back()))) info.caption.pop_back();
    }
  if (info.caption.empty())
    info.problem = fmt::format("{}: sample '{}' has no caption (a .txt part, or '{}' in its .json)", where, s.key, caption_field);
  else if (!clean_text(info.caption) || !clean_text(info.id))
    info.problem = fmt::format("{}: sample '{}' holds ASCII record/unit separators (0x1e/0x1f)", where, s.key);
  for (const auto& [k, v] : info.labels)
    if (info.problem.empty() && (!clean_text(k) || !clean_text(v)))
      info.problem = fmt::format("{}: sample '{}' has a label holding ASCII record/unit separators", where, s.key);
  return info;
}

Manifest Manifest::read_shards(const std::vector<std::string>& patterns, const ManifestOptions& given) {
  const ManifestOptions options = with_default_fields(given, ManifestFormat::Shards);
  Manifest m;
  m.shards_ = expand_shard_patterns(patterns);
  m.options_fingerprint_ = options_fingerprint(options, ManifestFormat::Shards);
  // The root: the shards' common folder, so rows name them relative to it.
  fs::path root = fs::absolute(m.shards_.front()).parent_path();
  for (const auto& shard : m.shards_)
    while (!root.empty() && fs::absolute(shard).lexically_relative(root).string().starts_with(".."))
      root = root.parent_path();
  m.root_ = root;
  m.source_ = root;
  std::set<std::string> ids;
  for (const auto& shard : m.shards_) {
    const std::string relative = fs::absolute(shard).lexically_relative(root).generic_string();
    try {
      ShardReader reader(shard, 0, /*read_data=*/false, {"txt", "json"});
      while (auto s = reader.next()) {
        ShardSampleInfo info = describe_shard_sample(*s, shard, options.caption_field);
        if (info.problem.empty() && !ids.insert(info.id).second)
          info.problem = fmt::format("{}: sample '{}' appears twice", shard.string(), s->key);
        if (!info.problem.empty()) {
          m.rejected_.push_back({info.id, info.problem});
          continue;
        }
        const SplitName split = info.split ? *info.split : split_of(info.id, options.train_fraction, options.validation_fraction);
        m.add(info.id, fmt::format("{}#{}", relative, s->offset), info.caption, split, 0, -1, {}, info.labels);
      }
    } catch (const Error& e) {
      // A shard that breaks off keeps the samples before the break; the rest is one rejected row.
      if (e.kind() != ErrorKind::Data) throw;
      m.rejected_.push_back({fmt::format("{}:(rest)", shard.filename().string()),
                             fmt::format("{} (the rest of the shard is skipped)", e.what())});
    }
  }
  m.arena_.shrink_to_fit();
  m.entries_.shrink_to_fit();
  return m;
}

void Manifest::save_index(const fs::path& file) const {
  nlohmann::json header = {{"root", root_.string()},
                           {"stamp", stamp_of(source_, shards_)},
                           {"options", options_fingerprint_},
                           {"rows", entries_.size()},
                           {"arena_bytes", arena_.size()}};
  nlohmann::json rejected = nlohmann::json::array();
  for (const auto& r : rejected_) rejected.push_back({r.id, r.reason});
  header["rejected"] = rejected;
  std::string out = kIndexMagic;
  out += header.dump() + "\n";
  out.append(reinterpret_cast<const char*>(entries_.data()), entries_.size() * sizeof(Entry));
  out += arena_;
  write_text_file_atomic(file, out);
}

Manifest Manifest::load_index(const fs::path& file, const fs::path& source, const ManifestOptions& given) {
  if (given.format == ManifestFormat::Shards || (given.format == ManifestFormat::Auto && lower(source.extension().string()) == ".tar"))
    return load_shard_index(file, {source.string()}, given);
  ManifestFormat format = given.format;
  if (format == ManifestFormat::Auto)
    format = fs::is_directory(source) ? ManifestFormat::Folder
             : lower(source.extension().string()) == ".csv" ? ManifestFormat::Csv
                                                            : ManifestFormat::Jsonl;
  return load(file, source.string(), with_default_fields(given, format), source, {});
}

Manifest Manifest::load_shard_index(const fs::path& file, const std::vector<std::string>& patterns, const ManifestOptions& given) {
  return load(file, fmt::format("{}", fmt::join(patterns, " ")), with_default_fields(given, ManifestFormat::Shards), {},
              expand_shard_patterns(patterns));
}

Manifest Manifest::load(const fs::path& file, const std::string& what, const ManifestOptions& options, const fs::path& source,
                        const std::vector<fs::path>& shards) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw data_error(fmt::format("{}: cannot open the manifest index", file.string()));
  std::string magic(sizeof(kIndexMagic) - 1, '\0');
  in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
  if (magic != kIndexMagic) throw data_error(fmt::format("{}: not a manifest index written by `asg data index`", file.string()));
  std::string line;
  std::getline(in, line);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error&) {
    throw data_error(fmt::format("{}: the manifest index header is corrupt", file.string()));
  }
  const std::string rebuild = fmt::format("rebuild it: asg data index {}", what);
  const ManifestFormat format = shards.empty() ? (options.format == ManifestFormat::Auto
                                                      ? (fs::is_directory(source)                         ? ManifestFormat::Folder
                                                         : lower(source.extension().string()) == ".csv" ? ManifestFormat::Csv
                                                                                                          : ManifestFormat::Jsonl)
                                                      : options.format)
                                               : ManifestFormat::Shards;
  const nlohmann::json now = stamp_of(source, shards);
  if (header["stamp"] != now) {
    if (header["stamp"].contains("source") && now.contains("source") && header["stamp"]["source"] != now["source"])
      throw data_error(fmt::format("{}: indexes {}, not {} ({})", file.string(), header["stamp"]["source"].get<std::string>(),
                                   source.string(), rebuild));
    throw data_error(fmt::format("{}: stale: {} changed since it was indexed ({})", file.string(), what, rebuild));
  }
  if (header.value("options", "") != options_fingerprint(options, format))
    throw data_error(fmt::format("{}: built with other manifest options ({} then, {} now; {})", file.string(),
                                 header.value("options", ""), options_fingerprint(options, format), rebuild));
  Manifest m;
  m.source_ = shards.empty() ? source : fs::path(header.value("root", ""));
  m.shards_ = shards;
  m.root_ = header.value("root", "");
  m.options_fingerprint_ = header.value("options", "");
  m.entries_.resize(header.value("rows", size_t{0}));
  m.arena_.resize(header.value("arena_bytes", size_t{0}));
  in.read(reinterpret_cast<char*>(m.entries_.data()), static_cast<std::streamsize>(m.entries_.size() * sizeof(Entry)));
  in.read(m.arena_.data(), static_cast<std::streamsize>(m.arena_.size()));
  if (!in) throw data_error(fmt::format("{}: the manifest index is truncated ({})", file.string(), rebuild));
  for (const auto& e : m.entries_)
    if (e.offset + uint64_t{e.id} + e.path + e.caption + e.extra > m.arena_.size() || e.split > 2)
      throw data_error(fmt::format("{}: the manifest index is corrupt ({})", file.string(), rebuild));
  for (const auto& r : header["rejected"]) m.rejected_.push_back({r[0].get<std::string>(), r[1].get<std::string>()});
  return m;
}

}  // namespace asg
