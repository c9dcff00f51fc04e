// webdataset: stickers in WebDataset-style tar shards, read through libarchive. Training streams the
// shards sequentially through a seeded shuffle buffer; evaluation reads samples by offset. See README.md.
#include <fmt/format.h>
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

class WebDataset;

// One reader's share of a split for one epoch: its shards in a seeded order, read sequentially, through a
// seeded shuffle buffer.
class ShardStream final : public SampleStream {
 public:
  ShardStream(const WebDataset& owner, SplitName split, std::vector<size_t> shards, size_t buffer, uint64_t seed, int64_t epoch)
      : owner_(owner), split_(split), shards_(std::move(shards)), capacity_(std::max<size_t>(1, buffer)), state_(seed), epoch_(epoch) {}
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
  int64_t epoch_;  // the training epoch its samples are decoded for (SampleTransform::sample_seed)
  bool drained_ = false;
};

class WebDataset final : public Dataset {
 public:
  WebDataset(const Params& p, const DatasetContext& context)
      : transform_(SampleTransform::from(p)),
        limits_(context.limits),
        shuffle_buffer_(static_cast<size_t>(p.integer("shuffle_buffer"))),
        vocabulary_(corpus_vocabulary(p)),
        options_(manifest_options(p)),
        // One pass over the headers (sticker parts skipped, captions read), or the index `asg data index`
        // wrote: where each sample starts, its caption and split. Evaluation reads samples by these
        // offsets; training streams the shards.
        index_(p.str("index").empty() ? Manifest::read_shards(p.strs("shards"), options_)
                                      : Manifest::load_shard_index(p.str("index"), p.strs("shards"), options_)) {
    for (size_t i = 0; i < index_.size(); ++i) by_split_[static_cast<int>(index_.split(i))].push_back(static_cast<uint32_t>(i));
    for (const auto& r : index_.rejected()) rejected_.push_back(RejectedSample{r.id, r.reason});
    label_keys_ = index_.common_label_keys();
  }

  DatasetInfo info() const override {
    DatasetInfo info{transform_.frames, transform_.height, transform_.width, transform_.fps, label_keys_, vocabulary_};
    info.sequential = true;
    return info;
  }

  int64_t size(Split split) const override { return static_cast<int64_t>(by_split_[static_cast<int>(split)].size()); }

  // By offset: re-reads the sample's members from its first header.
  Sticker get(Split split, int64_t index) const override {
    const auto& rows = by_split_[static_cast<int>(split)];
    if (index < 0 || index >= static_cast<int64_t>(rows.size()))
      throw data_error(fmt::format("webdataset: index {} outside the {} split (size {})", index, split_name(split), rows.size()));
    const Manifest::Row row = index_.row(rows[static_cast<size_t>(index)]);
    const std::string_view at(row.path);
    const size_t hash = at.rfind('#');
    const fs::path shard = index_.root() / std::string(at.substr(0, hash));
    const uint64_t offset = std::stoull(std::string(at.substr(hash + 1)));
    ShardReader reader(shard, offset);
    auto s = reader.next();
    if (!s) throw data_error(fmt::format("{}: no sample at byte {} (the shard changed since it was indexed)", shard.string(), offset));
    return decode(*s, shard, transform_.for_evaluation(), 0);  // evaluation's read: whole clips
  }

  std::vector<RejectedSample> rejected() const override { return rejected_; }

  std::unique_ptr<SampleStream> open_stream(Split split, StreamSlice slice, int64_t epoch, uint64_t seed) const override {
    // Shards in a seeded order per epoch, dealt round-robin to the readers; each reader shuffles its
    // samples through a buffer seeded by (seed, epoch, reader).
    const std::vector<int64_t> order = epoch_permutation(static_cast<int64_t>(index_.shards().size()), seed, epoch);
    std::vector<size_t> mine;
    for (size_t i = static_cast<size_t>(slice.reader()); i < order.size(); i += static_cast<size_t>(slice.readers()))
      mine.push_back(static_cast<size_t>(order[i]));
    const uint64_t stream_seed = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch) * 0x9e3779b97f4a7c15ull +
                                                              static_cast<uint64_t>(slice.reader())));
    return std::make_unique<ShardStream>(*this, static_cast<SplitName>(static_cast<int>(split)), std::move(mine),
                                         shuffle_buffer_, stream_seed, epoch);
  }

  // A streamed sample of split `want` as an item (one that fails with the reason when it is unusable), or
  // nullopt when it belongs to another split.
  std::optional<StreamItem> item(const ShardSample& s, size_t shard, SplitName want, int64_t epoch) const {
    const fs::path& path = index_.shards()[shard];
    const ShardSampleInfo info = describe_shard_sample(s, path, options_.caption_field);
    const SplitName split = info.split ? *info.split : split_of(info.id, options_.train_fraction, options_.validation_fraction);
    if (split != want) return std::nullopt;
    if (!info.problem.empty()) return StreamItem{info.id, [why = info.problem]() -> Sticker { throw data_error(why); }};
    auto sample = std::make_shared<ShardSample>(s);
    return StreamItem{info.id, [this, sample, path, epoch] { return decode(*sample, path, transform_, epoch); }};
  }

 private:
  static ManifestOptions manifest_options(const Params& p) {
    ManifestOptions o;
    o.format = ManifestFormat::Shards;
    o.caption_field = p.str("caption_field");
    o.set_split_fractions(p.reals("split_fractions"));
    return o;
  }

  // transform: the dataset's for training (epoch: which random_frames draw), its for_evaluation() otherwise.
  Sticker decode(const ShardSample& s, const fs::path& shard, const SampleTransform& transform, int64_t epoch) const {
    const ShardSampleInfo info = describe_shard_sample(s, shard, options_.caption_field);
    if (!info.problem.empty()) throw data_error(info.problem);
    const std::string name = fmt::format("{}:{}.{}", shard.string(), s.key, info.media);
    const SampleFrames frames = load_sample(s.parts.at(info.media), name, limits_, transform, transform.sample_seed(info.id, epoch));
    return sticker_from_sample(frames, info.id, info.caption, info.labels, transform.pad_short || transform.random_max > 0);
  }

  friend class ShardStream;
  SampleTransform transform_;
  DecodeLimits limits_;
  size_t shuffle_buffer_;
  Vocabulary vocabulary_;
  ManifestOptions options_;
  Manifest index_;
  std::array<std::vector<uint32_t>, 3> by_split_;
  std::vector<std::string> label_keys_;
  std::vector<RejectedSample> rejected_;
};

std::optional<StreamItem> ShardStream::read_one() {
  while (at_shard_ < shards_.size()) {
    const fs::path& shard = owner_.index_.shards()[shards_[at_shard_]];
    try {
      if (!reader_) reader_ = std::make_unique<ShardReader>(shard);
      while (auto s = reader_->next())
        if (auto item = owner_.item(*s, shards_[at_shard_], split_, epoch_)) return item;
    } catch (const Error& e) {
      // A shard that breaks off (truncated, corrupt) loses the rest of its samples, not the run: the
      // loader counts this as one bad sample, as it does a bad file.
      if (e.kind() != ErrorKind::Data) throw;
      reader_.reset();
      ++at_shard_;
      return StreamItem{fmt::format("{}:(rest)", shard.filename().string()),
                        [why = std::string(e.what())]() -> Sticker { throw data_error(why + " (the rest of the shard is skipped)"); }};
    }
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
      path_param("index", "", "a shard index from `asg data index` (opens without reading every header); refused if stale"),
      int_param("shuffle_buffer", 256, "samples held for shuffling while streaming (more = better mixed, more memory)").range(1, 1e7),
  };
  for (auto& spec : corpus_params()) p.push_back(std::move(spec));
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
