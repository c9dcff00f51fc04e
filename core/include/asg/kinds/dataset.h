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
// - get() must be safe to call concurrently from several threads.
// - Errors in the underlying data (a malformed file) are asg::Error(Data) naming the file.
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

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
};

template <>
struct PluginKindTraits<Dataset> {
  static constexpr const char* name = "dataset";
  using Context = NoContext;
};

}  // namespace asg
