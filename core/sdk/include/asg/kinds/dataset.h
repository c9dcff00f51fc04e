// Dataset plugins: where stickers come from.
//
// Contract
// - A dataset is a deterministic, random-access collection per split: get(split, i) returns the same
//   sticker every time for the same parameters (a synthetic dataset derives it from its seed; a file
//   dataset reads it). The core shuffles, batches and composites; the dataset only produces samples.
// - Frames are straight (not premultiplied) RGBA in [0, 1], float32, layout [T, 4, H, W], on the CPU,
//   all of the shape info() announces. Transparent pixels may hold any colour.
// - caption is the text prompt. labels are optional structured attributes of the caption (e.g.
//   colour = "red"); metrics that check caption following declare which keys they need, and the core
//   refuses the combination before training if the dataset does not announce them in info().label_keys.
// - When labels come from a shared, versioned vocabulary (e.g. the sprite vocabulary of the synthetic
//   stickers), info().vocabulary names it and its version; metrics that interpret labels require one.
// - A sample may be shorter than info().frames in content: frame_valid then marks the real frames (1)
//   and the padding (0), and the training loss ignores the padding. Undefined = every frame is real.
// - get() must be safe to call concurrently from several threads.
// - Training reads epoch e's samples through get_in_epoch(split, i, e): the same as get() unless the dataset
//   redraws per-epoch randomness (RDTF's random keyframe count, random_frames: a new k every epoch);
//   get() is what evaluation reads, the same every time.
// - Errors in the underlying data (a malformed, truncated or oversized file) are asg::Error(Data) naming
//   the file. The loader skips such a sample and counts it; the run fails only when the bad fraction
//   passes [data] max_bad_fraction. Rows a dataset refuses while opening (paths outside its root, missing
//   or empty files) are not part of size() but are reported by rejected(), so they count too.
// - Decoders must respect DatasetContext::limits (asg/media/limits.h): they stop decompression bombs.
// - Streaming form: open_stream(split, slice, epoch, seed) yields the split's samples in an order that
//   depends only on (seed, epoch), split between the readers of `slice` (ranks x workers) so that
//   together they read every sample once per epoch. next() does the cheap, ordered part (reading bytes);
//   StreamItem::decode does the expensive part and may run on any thread. The default streams the
//   random-access form (a seeded permutation); datasets read sequentially (tar shards) override it and
//   set info().sequential, which makes training read them through the stream.
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "asg/hash.h"
#include "asg/media/limits.h"
#include "asg/media/transform.h"
#include "asg/vocabulary.h"

namespace asg {

enum class Split { Train, Validation, Test };
inline const char* split_name(Split split) {
  return split == Split::Train ? "train" : split == Split::Validation ? "validation" : "test";
}
// The inverse of split_name for the names the [eval] schema allows ("train", "validation", "test").
inline Split split_from_name(const std::string& name) {
  return name == "train" ? Split::Train : name == "validation" ? Split::Validation : Split::Test;
}

struct Sticker {
  std::string id;                             // stable identifier, e.g. "test/000042"
  torch::Tensor frames;                       // float32 [T, 4, H, W], straight RGBA in [0, 1]
  std::vector<int32_t> frame_durations_ms;    // one per frame
  std::string caption;
  std::map<std::string, std::string> labels;  // optional, keys listed in DatasetInfo::label_keys
  torch::Tensor frame_valid;                  // optional float32 [T]: 1 = real frame, 0 = padding
};

// A sample the dataset could not use, and why ("outside the dataset root", "the file is empty", ...).
struct RejectedSample {
  std::string id;
  std::string reason;
};

// What the core gives every dataset besides its parameters ([data] in the experiment).
struct DatasetContext {
  DecodeLimits limits;
};

struct DatasetInfo {
  int64_t frames = 0;
  int64_t height = 0;
  int64_t width = 0;
  double fps = 0;                       // nominal frame rate
  std::vector<std::string> label_keys;  // attribute keys every sticker's labels has
  Vocabulary vocabulary;                // where the label values come from; empty name = none
  bool sequential = false;              // training reads it through open_stream (e.g. tar shards)
};

// One reader's share of a split: rank of world_size processes, worker of each process's workers. The
// split's units (shards, or samples) are dealt round-robin to the world_size * workers readers.
struct StreamSlice {
  int64_t rank = 0, world_size = 1;
  int64_t worker = 0, workers = 1;
  int64_t reader() const { return rank * workers + worker; }
  int64_t readers() const { return world_size * workers; }
};

// A sample read from a stream but not decoded yet.
struct StreamItem {
  std::string id;
  std::function<Sticker()> decode;  // asg::Error(Data) for a bad file: the loader skips and counts it
};

class SampleStream {
 public:
  virtual ~SampleStream() = default;
  virtual std::optional<StreamItem> next() = 0;  // nullopt once the slice's epoch is over
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual DatasetInfo info() const = 0;                             // required
  virtual int64_t size(Split split) const = 0;                      // required; 0 if the split is empty
  virtual Sticker get(Split split, int64_t index) const = 0;        // required; 0 <= index < size(split)
  virtual Sticker get_in_epoch(Split split, int64_t index, int64_t epoch) const {  // optional
    (void)epoch;
    return get(split, index);
  }
  // Rows refused while opening (any split), each with its reason; the loader reports and counts them.
  virtual std::vector<RejectedSample> rejected() const { return {}; }
  // The streaming form (see the contract above). The default permutes the random-access split with a
  // generator seeded by (seed, epoch) and gives reader r every readers()-th sample from r.
  virtual std::unique_ptr<SampleStream> open_stream(Split split, StreamSlice slice, int64_t epoch, uint64_t seed) const;
};

// A sample made by make_sample (asg/media/transform.h) as a Sticker; with `masked` (the transform pads:
// pad_short or random_frames) its frame_valid marks the real frames.
inline Sticker sticker_from_sample(const SampleFrames& sample, std::string id, std::string caption,
                                   std::map<std::string, std::string> labels, bool masked) {
  Sticker s;
  s.id = std::move(id);
  s.frames = torch::from_blob(const_cast<float*>(sample.rgba.data()), {sample.frames, 4, sample.height, sample.width},
                              torch::kFloat)
                 .clone();
  s.frame_durations_ms = sample.durations_ms;
  s.caption = std::move(caption);
  s.labels = std::move(labels);
  if (masked) {
    s.frame_valid = torch::empty({sample.frames}, torch::kFloat);
    for (int64_t i = 0; i < sample.frames; ++i) s.frame_valid[i] = static_cast<float>(sample.valid[static_cast<size_t>(i)]);
  }
  return s;
}

// The default open_stream's order: a Fisher-Yates permutation of 0..n-1 driven by splitmix64 from
// (seed, epoch). The same on every machine and for every number of readers.
inline std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  uint64_t state = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch) + 0x5851f42d4c957f2dull));
  for (int64_t i = n - 1; i > 0; --i) {
    state = splitmix64(state);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(state % static_cast<uint64_t>(i + 1))]);
  }
  return order;
}

inline std::unique_ptr<SampleStream> Dataset::open_stream(Split split, StreamSlice slice, int64_t epoch, uint64_t seed) const {
  class Permuted final : public SampleStream {
   public:
    Permuted(const Dataset& dataset, Split split, StreamSlice slice, std::vector<int64_t> order, int64_t epoch)
        : dataset_(dataset), split_(split), order_(std::move(order)), at_(slice.reader()), step_(slice.readers()), epoch_(epoch) {}
    std::optional<StreamItem> next() override {
      if (at_ >= static_cast<int64_t>(order_.size())) return std::nullopt;
      const int64_t index = order_[static_cast<size_t>(at_)];
      at_ += step_;
      return StreamItem{std::string(split_name(split_)) + "/" + std::to_string(index),
                        [&dataset = dataset_, split = split_, index, epoch = epoch_] { return dataset.get_in_epoch(split, index, epoch); }};
    }

   private:
    const Dataset& dataset_;
    Split split_;
    std::vector<int64_t> order_;
    int64_t at_, step_, epoch_;
  };
  return std::make_unique<Permuted>(*this, split, slice, epoch_permutation(size(split), seed, epoch), epoch);
}

template <>
struct PluginKindTraits<Dataset> {
  static constexpr const char* name = "dataset";
  using Context = DatasetContext;
};

}  // namespace asg
