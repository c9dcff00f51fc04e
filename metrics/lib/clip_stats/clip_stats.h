// Per-clip temporal statistics shared by the weight-free temporal metrics (motion, loop_seam, ...).
// Clips are what metrics receive: straight RGBA in [0, 1], [B, T, 4, H, W]. Colour is premultiplied by alpha
// first, so the colour stored under transparent pixels cannot matter and alpha changes count as change.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "asg/error.h"
#include "asg/kinds/dataset.h"
#include "asg/kinds/metric.h"
#include "asg/media/alpha.h"

namespace asg::metrics {

// [B, T, 4, H, W] straight RGBA -> float64 premultiplied RGBA.
inline torch::Tensor premultiplied(const torch::Tensor& clips) { return premultiply(clips.to(torch::kFloat64), 2); }

// Mean absolute difference between frames a and b of each clip (over channels and pixels): [B].
inline torch::Tensor frame_change(const torch::Tensor& premultiplied_clips, int64_t a, int64_t b) {
  return (premultiplied_clips.select(1, a) - premultiplied_clips.select(1, b)).abs().flatten(1).mean(1);
}

// Mean absolute change of every consecutive step t -> t+1: [B, T-1].
inline torch::Tensor step_changes(const torch::Tensor& premultiplied_clips) {
  const int64_t t = premultiplied_clips.size(1);
  return (premultiplied_clips.slice(1, 1) - premultiplied_clips.slice(1, 0, t - 1)).abs().flatten(2).mean(2);
}

// A metric's `background` parameter (RGB, 0-255) as the [0, 1] colour composite_over takes.
inline std::array<double, 3> background_rgb(const std::vector<int64_t>& values) {
  return {static_cast<double>(values.at(0)) / 255.0, static_cast<double>(values.at(1)) / 255.0,
          static_cast<double>(values.at(2)) / 255.0};
}

// A reference sticker as a batch of one, [1, T', 4, H, W]: only its real frames when the dataset padded it
// (frame_valid marks padding at the end), so padding never counts as a still frame or a loop point.
// How many real frames a sticker has: frame_valid marks padding at the end; undefined = every frame is real.
inline int64_t valid_frame_count(const Sticker& sticker) {
  if (sticker.frame_valid.defined() && sticker.frame_valid.numel() == sticker.frames.size(0))
    return std::max<int64_t>(1, sticker.frame_valid.sum().item<int64_t>());
  return sticker.frames.size(0);
}

inline torch::Tensor reference_clip(const Sticker& reference) {
  return reference.frames.slice(0, 0, valid_frame_count(reference)).unsqueeze(0);
}

// A running mean of per-clip values (float64 sum and count), kept in a MetricState under `name`.sum and
// `name`.count so that ranks can merge it and the real side can be cached.
struct ClipMean {
  double sum = 0;
  int64_t count = 0;
  void add(const torch::Tensor& per_clip) {
    sum += per_clip.to(torch::kFloat64).sum().item<double>();
    count += per_clip.numel();
  }
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
  void save(MetricState& state, const std::string& name) const {
    state[name + ".sum"] = torch::full({}, sum, torch::kFloat64);
    state[name + ".count"] = torch::full({}, static_cast<double>(count), torch::kFloat64);
  }
  void merge(const MetricState& state, const std::string& name) {
    sum += at(state, name + ".sum");
    count += static_cast<int64_t>(at(state, name + ".count"));
  }

 private:
  static double at(const MetricState& state, const std::string& key) {
    auto it = state.find(key);
    if (it == state.end()) throw data_error("metric state without '" + key + "' (written by another version of the metric?)");
    return it->second.item<double>();
  }
};

// A metric whose value is the mean of one number per clip, reported for the generated clips as `key` and for
// the protocol's real set (its real frames only) as `key`.reference. Subclasses say how a batch of clips
// [B, T, 4, H, W] becomes [B] numbers and how many frames a clip needs; this class does the real side, the
// state, merging and the result.
class PerClipMeanMetric : public Metric {
 public:
  PerClipMeanMetric(std::string key, bool higher_is_better, int64_t min_frames, const MetricContext& ctx)
      : key_(std::move(key)), higher_is_better_(higher_is_better), min_frames_(min_frames) {
    if (ctx.data.frames < min_frames_)
      throw config_error("'" + key_ + "' needs clips of at least " + std::to_string(min_frames_) + " frames; dataset '" +
                         ctx.dataset_name + "' has " + std::to_string(ctx.data.frames));
  }

  bool uses_real_set() const override { return true; }
  void update_real(const std::vector<Sticker>& real, int64_t) override {
    for (const auto& r : real) {
      const auto clip = reference_clip(r);
      if (clip.size(1) >= min_frames_) reference_.add(per_clip(clip));  // too few real frames: nothing to measure
    }
  }
  MetricState real_state() const override {
    MetricState s;
    reference_.save(s, "reference");
    return s;
  }
  void load_real_state(const MetricState& s) override {
    reference_ = {};
    reference_.merge(s, "reference");
  }

  void update(const torch::Tensor& generated, const std::vector<Sticker>&, int64_t) override { generated_.add(per_clip(generated)); }
  MetricState state() const override {
    MetricState s;
    generated_.save(s, "generated");
    return s;
  }
  void merge(const MetricState& s) override { generated_.merge(s, "generated"); }

  std::vector<MetricValue> result() override {
    if (generated_.count == 0) throw data_error(key_ + ": no clips were evaluated");
    return {{key_, generated_.mean(), higher_is_better_}, {key_ + ".reference", reference_.mean(), higher_is_better_}};
  }

 protected:
  virtual torch::Tensor per_clip(const torch::Tensor& clips) const = 0;  // [B, T, 4, H, W] -> [B]

 private:
  std::string key_;
  bool higher_is_better_;
  int64_t min_frames_;
  ClipMean generated_, reference_;
};

}  // namespace asg::metrics
