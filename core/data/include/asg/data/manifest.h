// Sticker manifests: which files make a dataset, with their captions, splits and labels. No torch.
//
// Formats (ManifestFormat; "auto" decides by the path: a directory is a folder, *.csv is CSV, else JSONL):
// - jsonl   one JSON object per line (a file starting with '[' is read as one JSON array instead):
//           `path_field` (default "path"), `caption_field` ("caption"), optional `id_field` ("id"; default
//           the path), `split_field` ("split"), and labels: a "labels" object and/or `label_fields`.
// - csv     RFC 4180 (quoted fields may hold commas, quotes and newlines), a header row naming the same
//           fields as jsonl.
// - vsd2m   VSD2M annotation records (JSON array or JSONL): md5 (the id), visual_path (the file), fmt,
//           nframes, keyframe_idx, and the caption in `caption_field` (VSD2M's code reads "eng_cap";
//           "caption" and "llava_wx_chn_cap" exist too); meanings (the trigger word) becomes a label.
// - folder  every file with a sticker extension under the root (recursively, sorted), captioned by a
//           sidecar: <file stem>.txt next to it. The id is the path relative to the root, without extension.
// - shards  WebDataset-style tar shards (asg/data/tar_shards.h; read_shards): one row per sample, its path
//           "<shard relative to the root>#<byte offset of its first header>", caption/split/labels from its
//           .json (`caption_field`, "split", "labels") or .txt; the id is "<shard file name>:<key>".
//
// A record with a missing or wrongly typed field is an error naming the file, the line and the record.
// A row whose file cannot be used is not an error but a RejectedRow with its reason: an absolute path, a
// path that leaves the root ("..", or a symlink resolving outside it), a missing or empty file (the last
// two only with check_files). Splits come from the split field when the manifest has one (train,
// validation/val, test), else from a hash of the id (split_of), so they never change when rows are added.
//
// Rows are stored compactly (one string arena plus 32-byte entries), so a 2M-row manifest fits in a few
// hundred MB.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asg/data/tar_shards.h"
#include "asg/params.h"
#include "asg/vocabulary.h"

namespace asg {

enum class ManifestFormat { Auto, Jsonl, Csv, Vsd2m, Folder, Shards };
const EnumNames<ManifestFormat>& manifest_format_names();  // "auto", "jsonl", "csv", "vsd2m", "folder", "shards"

enum class SplitName : uint8_t { Train = 0, Validation = 1, Test = 2 };
const char* split_name_of(SplitName split);  // "train", "validation", "test"

// The split a sample id falls in when the manifest gives none: splitmix64(FNV-1a(id)) as a fraction of 2^64,
// against the cumulative fractions {train, validation} (test takes the rest).
SplitName split_of(std::string_view id, double train_fraction, double validation_fraction);

struct ManifestOptions {
  ManifestFormat format = ManifestFormat::Auto;
  std::filesystem::path root;  // where relative paths start; empty = the manifest's directory (or the folder)
  // Empty = the format's default: "path", "caption", "id"; vsd2m: "visual_path", "eng_cap" (what VSD2M's
  // code reads), "md5".
  std::string path_field;
  std::string caption_field;
  std::string id_field;
  std::string split_field = "split";
  std::vector<std::string> label_fields;
  std::vector<std::string> formats;       // keep only these fmt values (vsd2m) / content formats; empty = all
  std::string subset = "all";             // vsd2m: "all", "real" or "cartoon"
  std::string subset_field = "domain";    // the record field holding "real"/"cartoon"
  double train_fraction = 0.98, validation_fraction = 0.01;  // hash splits
  bool check_files = true;                // stat every file: missing and empty files become rejected rows

  // train_fraction and validation_fraction from a `split_fractions` value [train, validation];
  // asg::Error(Config) when they add up to more than 1 (test takes the rest).
  void set_split_fractions(const std::vector<double>& fractions);
};

// The keys every dataset reading a corpus of sticker files takes beside its own: `split_fractions` (the hash
// split's shares, for samples whose record names no split; ManifestOptions::set_split_fractions reads it) and
// `vocabulary` / `vocabulary_version` (where the labels come from; corpus_vocabulary reads them).
std::vector<ParamSpec> corpus_params();
Vocabulary corpus_vocabulary(const Params& params);

struct RejectedRow {
  std::string id;      // or "<manifest>:<line>" when the row has none yet
  std::string reason;
};

class Manifest {
 public:
  struct Row {
    std::string_view id, path, caption;  // path: relative to root (as written, normalised)
    SplitName split = SplitName::Train;
    int64_t line = 0;                    // in the manifest (1-based); 0 for a folder
    int64_t frames = -1;                 // vsd2m nframes; -1 = not given
    std::vector<int64_t> keyframes;      // vsd2m keyframe_idx
    std::map<std::string, std::string> labels;
  };

  // Reads and checks `source` (a manifest file or, for folder, a directory; a *.tar file or format
  // "shards" reads it as a shard pattern). asg::Error(Data) naming the file:line and the record for
  // malformed records; asg::Error(Config) for options that cannot apply.
  static Manifest read(const std::filesystem::path& source, const ManifestOptions& options);
  // Shards from patterns (expand_shard_patterns): their headers are read, sticker parts skipped.
  static Manifest read_shards(const std::vector<std::string>& patterns, const ManifestOptions& options);

  size_t size() const { return entries_.size(); }
  Row row(size_t i) const;
  std::string_view id(size_t i) const { return view(entries_[i], 0); }
  SplitName split(size_t i) const { return static_cast<SplitName>(entries_[i].split); }
  std::filesystem::path file(size_t i) const { return root_ / std::string(view(entries_[i], 1)); }
  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& source() const { return source_; }
  const std::vector<RejectedRow>& rejected() const { return rejected_; }
  size_t memory_bytes() const;  // what the rows occupy
  std::vector<std::string> common_label_keys() const;  // the label keys every row has (sorted)

  // The rows as a binary index file (`asg data index`): loading it skips parsing the manifest. It records
  // the manifest's size and modification time and the options it was read with.
  void save_index(const std::filesystem::path& file) const;
  // asg::Error(Data) naming the index when it is not one, or is stale: the manifest changed since, or
  // the options differ (the message says which; rebuild it with `asg data index`).
  static Manifest load_index(const std::filesystem::path& file, const std::filesystem::path& source,
                             const ManifestOptions& options);
  static Manifest load_shard_index(const std::filesystem::path& file, const std::vector<std::string>& patterns,
                                   const ManifestOptions& options);
  // A shard set's shards, in pattern order (empty for other manifests).
  const std::vector<std::filesystem::path>& shards() const { return shards_; }

 private:
  // A row's strings lie one after another in the arena: id, path, caption, extra (labels, frames and
  // keyframes, serialised). 32 bytes per row besides them.
  struct Entry {
    uint64_t offset = 0;
    uint32_t id = 0, path = 0, caption = 0, extra = 0;  // lengths
    uint32_t line = 0;
    uint8_t split = 0;
  };
  std::string_view view(const Entry& e, int field) const;
  static Manifest read_rows(const std::filesystem::path& source, const ManifestOptions& options);
  void add(std::string_view id, std::string_view path, std::string_view caption, SplitName split, int64_t line,
           int64_t frames, const std::vector<int64_t>& keyframes, const std::map<std::string, std::string>& labels);
  friend class ManifestReader;

  static Manifest load(const std::filesystem::path& file, const std::string& what, const ManifestOptions& options,
                       const std::filesystem::path& source, const std::vector<std::filesystem::path>& shards);
  std::filesystem::path source_, root_;
  std::vector<std::filesystem::path> shards_;
  std::string options_fingerprint_;
  std::string arena_;
  std::vector<Entry> entries_;
  std::vector<RejectedRow> rejected_;
};

// Why `relative` (a manifest path) cannot be used under `root`, or nullopt when it can: absolute, leaves
// the root lexically or through a symlink; with check_file also missing, not a regular file, or empty.
std::optional<std::string> unusable_path(const std::filesystem::path& root, const std::string& relative, bool check_file);

// What a shard sample says about itself: its id, caption, split (if its .json names one), labels, the
// extension of its sticker part, and why it cannot be used ("" if it can).
struct ShardSampleInfo {
  std::string id, caption, media, problem;
  std::optional<SplitName> split;
  std::map<std::string, std::string> labels;
};
ShardSampleInfo describe_shard_sample(const ShardSample& sample, const std::filesystem::path& shard,
                                      const std::string& caption_field);

// RFC 4180 CSV records from `text` (fields unquoted; "" inside quotes is one quote). Each record comes with
// the 1-based line it starts on. asg::Error(Data) naming `name` and the line for an unterminated quote.
std::vector<std::pair<int64_t, std::vector<std::string>>> parse_csv(std::string_view text, const std::string& name);

}  // namespace asg
