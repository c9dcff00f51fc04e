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
// - Errors in the underlying data (a malformed, truncated or oversized file) are asg::Error(Data) naming
//   the file. The loader skips such a sample and counts it; the run fails only when the bad fraction
//   passes [data] max_bad_fraction. Rows a dataset refuses while opening (paths outside its root, missing
//   or empty files) are not part of size() but are reported by rejected(), so they count too.
// - Decoders must respect DatasetContext::limits (asg/media/limits.h): they stop decompression bombs.
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "asg/media/limits.h"
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
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual DatasetInfo info() const = 0;                             // required
  virtual int64_t size(Split split) const = 0;                      // required; 0 if the split is empty
  virtual Sticker get(Split split, int64_t index) const = 0;        // required; 0 <= index < size(split)
  // Rows refused while opening (any split), each with its reason; the loader reports and counts them.
  virtual std::vector<RejectedSample> rejected() const { return {}; }
};

template <>
struct PluginKindTraits<Dataset> {
  static constexpr const char* name = "dataset";
  using Context = DatasetContext;
};

}  // namespace asg
