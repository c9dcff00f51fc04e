// webdataset: stickers in WebDataset-style tar shards, read through libarchive. Training streams the
// shards sequentially through a seeded shuffle buffer; evaluation reads samples by offset. See README.md.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "asg/data/manifest.h"
#include "asg/data/tar_shards.h"
#include "asg/hash.h"
#include "asg/kinds/dataset.h"
#include "asg/media/sticker_file.h"
#include "asg/media/transform.h"
#include "asg/plugin.h"

namespace asg::webdataset {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& media_extensions() {
  static const std::vector<std::string> e{"gif", "webp", "png", "jpg", "jpeg", "bmp", "mp4", "webm"};
  return e;
}

// What a sample's small parts say: caption, split, labels.
struct Annotation {
  std::string caption;
  std::optional<SplitName> split;
  std::map<std::string, std::string> labels;
};

struct Options {
  std::string caption_field;
  double train_fraction = 0.98, validation_fraction = 0.01;
};

std::optional<SplitName> parse_split(const std::string& v) {
  if (v == "train") return SplitName::Train;
  if (v == "validation" || v == "val" || v == "valid") return SplitName::Validation;
  if (v == "test") return SplitName::Test;
  return std::nullopt;
}

// The annotation of a sample from its .json (caption_field, "split", "labels") or .txt part; "" = usable.
std::string annotate(const ShardSample& s, const std::string& where, const Options& o, Annotation& out) {
  if (auto it = s.parts.find("json"); it != s.parts.end()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(it->second.begin(), it->second.end());
    } catch (const nlohmann::json::parse_error& e) {
      return fmt::format("{}: {}.json is not valid JSON: {}", where, s.key, e.what());
    }
    if (!j.is_object()) return fmt::format("{}: {}.json is not a JSON object", where, s.key);
    if (j.contains(o.caption_field) && j[o.caption_field].is_string()) out.caption = j[o.caption_field].get<std::string>();
    if (j.contains("split") && j["split"].is_string()) {
      out.split = parse_split(j["split"].get<std::string>());
      if (!out.split) return fmt::format("{}: {}.json: split '{}' (valid: train, validation, test)", where, s.key, j["split"].get<std::string>());
    }
    if (j.contains("labels") && j["labels"].is_object())
      for (const auto& [k, v] : j["labels"].items())
        if (v.is_string()) out.labels[k] = v.get<std::string>();
  }
  if (out.caption.empty())
    if (auto it = s.parts.find("txt"); it != s.parts.end()) {
      out.caption.assign(it->second.begin(), it->second.end());
      while (!out.caption.empty() && std::isspace(static_cast<unsigned char>(out.caption.back()))) out.caption.pop_back();
    }
  if (out.caption.empty())
    return fmt::format("{}: sample '{}' has no caption (a .txt part, or '{}' in its .json)", where, s.key, o.caption_field);
  return "";
}

// The sticker part's extension, or "" if the sample has none.
std::string media_part(const ShardSample& s) {
  for (const auto& ext : media_extensions())
    if (s.parts.count(ext)) return ext;
  return "";
}

class WebDataset;

// One reader's share of a split for one epoch: its shards in a seeded order, read sequentially, through a
// seeded shuffle buffer.
class ShardStream final : public SampleStream {
 public:
  ShardStream(const WebDataset& owner, SplitName split, std::vector<size_t> shards, size_t buffer, uint64_t seed)
      : owner_(owner), split_(split), shards_(std::move(shards)), capacity_(std::max<size_t>(1, buffer)), state_(seed) {}
  std::optional<StreamItem> next() override;

 private:
  std::optional<StreamItem> read_one();  // the next sample of the split from the shards, in file order
  const WebDataset& owner_;
  SplitName split_;
  std::vector<size_t> shards_;
  size_t at_shard_ = 0;
  std::unique_ptr<ShardReader> reader_;
  std::vector<StreamItem> buffer_;
  size_t capacity_;
  uint64_t state_;
  bool drained_ = false;
};

class WebDataset final : public Dataset {
 public:
  WebDataset(const Params& p, const DatasetContext& context)
      : transform_(SampleTransform::from(p)),
        limits_(context.limits),
        shuffle_buffer_(static_cast<size_t>(p.integer("shuffle_buffer"))),
        vocabulary_{p.str("vocabulary"), p.str("vocabulary_version")} {
    options_.caption_field = p.str("caption_field");
    const auto fractions = p.reals("split_fractions");
    if (fractions[0] + fractions[1] > 1.0 + 1e-9)
      throw config_error(fmt::format("split_fractions = [{}, {}]: train + validation must be at most 1", fractions[0], fractions[1]));
    options_.train_fraction = fractions[0];
    options_.validation_fraction = fractions[1];
    shards_ = expand_shard_patterns(p.strs("shards"));
    // One pass over the headers (sticker parts are skipped, not read): where each sample starts, its
    // caption and split. Evaluation reads samples by these offsets; training streams the shards.
    std::set<std::string> keys;
    for (size_t shard = 0; shard < shards_.size(); ++shard) {
      ShardReader reader(shards_[shard], 0, /*read_data=*/false, {"txt", "json"});
      while (auto s = reader.next()) {
        const std::string id = fmt::format("{}:{}", shards_[shard].filename().string(), s->key);
        Annotation a;
        std::string why = s->refused;
        if (why.empty() && media_part(*s).empty())
          why = fmt::format("{}: sample '{}' has no sticker part (one of: {})", shards_[shard].string(), s->key,
                            fmt::join(media_extensions(), ", "));
        if (why.empty()) why = annotate(*s, shards_[shard].string(), options_, a);
        if (why.empty() && !keys.insert(id).second) why = fmt::format("sample '{}' appears twice in the shard", s->key);
        if (!why.empty()) {
          rejected_.push_back(RejectedSample{id, why});
          continue;
        }
        const SplitName split = a.split ? *a.split : split_of(id, options_.train_fraction, options_.validation_fraction);
        samples_[static_cast<int>(split)].push_back(Located{static_cast<uint32_t>(shard), s->offset, id, a.caption, a.labels});
      }
    }
    bool first = true;
    for (const auto& split : samples_)
      for (const auto& s : split) {
        std::set<std::string> k;
        for (const auto& [key, v] : s.labels) k.insert(key);
        if (first) label_keys_ = k;
        else {
          std::set<std::string> both;
          std::set_intersection(label_keys_.begin(), label_keys_.end(), k.begin(), k.end(), std::inserter(both, both.end()));
          label_keys_ = std::move(both);
        }
        first = false;
      }
  }

  DatasetInfo info() const override {
    DatasetInfo info{transform_.frames, transform_.height, transform_.width, transform_.fps,
                     std::vector<std::string>(label_keys_.begin(), label_keys_.end()), vocabulary_};
    info.sequential = true;
    return info;
  }

  int64_t size(Split split) const override { return static_cast<int64_t>(samples_[static_cast<int>(split)].size()); }

  // By offset: re-reads the sample's members from its first header.
  Sticker get(Split split, int64_t index) const override {
    const auto& list = samples_[static_cast<int>(split)];
    if (index < 0 || index >= static_cast<int64_t>(list.size()))
      throw data_error(fmt::format("webdataset: index {} outside the {} split (size {})", index, split_name(split), list.size()));
    const Located& at = list[static_cast<size_t>(index)];
    ShardReader reader(shards_[at.shard], at.offset);
    auto s = reader.next();
    if (!s) throw data_error(fmt::format("{}: no sample at byte {} (the shard changed since it was indexed)", shards_[at.shard].string(), at.offset));
    return decode(*s, shards_[at.shard]);
  }

  std::vector<RejectedSample> rejected() const override { return rejected_; }

  std::unique_ptr<SampleStream> open_stream(Split split, StreamSlice slice, int64_t epoch, uint64_t seed) const override {
    // Shards in a seeded order per epoch, dealt round-robin to the readers; each reader shuffles its
    // samples through a buffer seeded by (seed, epoch, reader).
    const std::vector<int64_t> order = epoch_permutation(static_cast<int64_t>(shards_.size()), seed, epoch);
    std::vector<size_t> mine;
    for (size_t i = static_cast<size_t>(slice.reader()); i < order.size(); i += static_cast<size_t>(slice.readers()))
      mine.push_back(static_cast<size_t>(order[i]));
    const uint64_t stream_seed = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch) * 0x9e3779b97f4a7c15ull +
                                                              static_cast<uint64_t>(slice.reader())));
    return std::make_unique<ShardStream>(*this, static_cast<SplitName>(static_cast<int>(split)), std::move(mine),
                                         shuffle_buffer_, stream_seed);
  }

  // The sample's split, caption and labels, or why it is unusable; used by the stream for each sample.
  std::optional<StreamItem> item(const ShardSample& s, size_t shard, SplitName want) const {
    const std::string id = fmt::format("{}:{}", shards_[shard].filename().string(), s.key);
    Annotation a;
    std::string why = s.refused;
    if (why.empty() && media_part(s).empty()) why = fmt::format("{}: sample '{}' has no sticker part", shards_[shard].string(), s.key);
    if (why.empty()) why = annotate(s, shards_[shard].string(), options_, a);
    const SplitName split = a.split ? *a.split : split_of(id, options_.train_fraction, options_.validation_fraction);
    if (split != want) return std::nullopt;
    if (!why.empty()) return StreamItem{id, [why]() -> Sticker { throw data_error(why); }};
    auto sample = std::make_shared<ShardSample>(s);
    const fs::path shard_path = shards_[shard];
    return StreamItem{id, [this, sample, shard_path] { return decode(*sample, shard_path); }};
  }

 private:
  struct Located {
    uint32_t shard;
    uint64_t offset;
    std::string id, caption;
    std::map<std::string, std::string> labels;
  };

  Sticker decode(const ShardSample& s, const fs::path& shard) const {
    const std::string ext = media_part(s);
    const std::string name = fmt::format("{}:{}.{}", shard.string(), s.key, ext);
    if (ext.empty()) throw data_error(fmt::format("{}: sample '{}' has no sticker part", shard.string(), s.key));
    Annotation a;
    if (std::string why = annotate(s, shard.string(), options_, a); !why.empty()) throw data_error(why);
    const auto& bytes = s.parts.at(ext);
    const DecodedSticker decoded = decode_sticker(bytes, name, limits_);
    const std::string id = fmt::format("{}:{}", shard.filename().string(), s.key);
    const SampleFrames frames = make_sample(decoded.animation, transform_, fnv1a64(id));
    Sticker out;
    out.id = id;
    out.frames = torch::from_blob(const_cast<float*>(frames.rgba.data()), {frames.frames, 4, frames.height, frames.width},
                                  torch::kFloat)
                     .clone();
    out.frame_durations_ms = frames.durations_ms;
    out.caption = a.caption;
    out.labels = a.labels;
    if (transform_.pad_short || transform_.random_max > 0) {
      out.frame_valid = torch::empty({frames.frames}, torch::kFloat);
      for (int64_t i = 0; i < frames.frames; ++i) out.frame_valid[i] = static_cast<float>(frames.valid[i]);
    }
    return out;
  }

  friend class ShardStream;
  SampleTransform transform_;
  DecodeLimits limits_;
  size_t shuffle_buffer_;
  Vocabulary vocabulary_;
  Options options_;
  std::vector<fs::path> shards_;
  std::array<std::vector<Located>, 3> samples_;
  std::set<std::string> label_keys_;
  std::vector<RejectedSample> rejected_;
};

std::optional<StreamItem> ShardStream::read_one() {
  while (at_shard_ < shards_.size()) {
    if (!reader_) reader_ = std::make_unique<ShardReader>(owner_.shards_[shards_[at_shard_]]);
    while (auto s = reader_->next())
      if (auto item = owner_.item(*s, shards_[at_shard_], split_)) return item;
    reader_.reset();
    ++at_shard_;
  }
  return std::nullopt;
}

std::optional<StreamItem> ShardStream::next() {
  // Fill the buffer, then hand out a random buffered sample and put the next one read in its place;
  // once the shards are done, drain the buffer in random order.
  while (!drained_ && buffer_.size() < capacity_) {
    auto item = read_one();
    if (!item) {
      drained_ = true;
      break;
    }
    buffer_.push_back(std::move(*item));
  }
  if (buffer_.empty()) return std::nullopt;
  state_ = splitmix64(state_);
  const size_t pick = static_cast<size_t>(state_ % buffer_.size());
  StreamItem out = std::move(buffer_[pick]);
  if (!drained_) {
    if (auto item = read_one()) buffer_[pick] = std::move(*item);
    else {
      drained_ = true;
      buffer_.erase(buffer_.begin() + static_cast<std::ptrdiff_t>(pick));
    }
  } else {
    buffer_.erase(buffer_.begin() + static_cast<std::ptrdiff_t>(pick));
  }
  return out;
}

std::vector<ParamSpec> params() {
  std::vector<ParamSpec> p = {
      string_list_param("shards", {}, "tar shards: paths, {000000..000099} ranges, * globs or directories (every *.tar)").must_set(),
      string_param("caption_field", "caption", "field of each sample's .json holding the caption (else its .txt part)"),
      float_list_param("split_fractions", {0.98, 0.01}, "[train, validation] hash-split shares for samples whose .json names no split")
          .range(0, 1)
          .length(2, 2),
      int_param("shuffle_buffer", 256, "samples held for shuffling while streaming (more = better mixed, more memory)").range(1, 1e7),
      string_param("vocabulary", "", "name of the label vocabulary the labels come from"),
      string_param("vocabulary_version", "", "its version"),
  };
  for (auto& spec : transform_params(64, 8)) p.push_back(std::move(spec));
  return p;
}

}  // namespace
}  // namespace asg::webdataset

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Dataset>(
    "webdataset", "1.0.0", "stickers in WebDataset-style tar shards (key.gif + key.json/.txt), streamed through a shuffle buffer",
    asg::webdataset::params(), [](const asg::Params& p, const asg::DatasetContext& ctx) {
      return std::make_shared<asg::webdataset::WebDataset>(p, ctx);
    }))
