// A metric whose value is the Fréchet distance between the features of the protocol's real set and those
// of the generated clips (frechet_pixel, fvd, fid). Subclasses say how stickers and clips become feature
// rows; this class keeps streamed float64 moments of both sides, the cacheable real state, merging and the
// result under `key` (lower is better).
#pragma once

#include <string>
#include <vector>

#include "asg/error.h"
#include "asg/kinds/metric.h"
#include "frechet.h"

namespace asg::metrics {

class FrechetFeatureMetric : public Metric {
 public:
  FrechetFeatureMetric(std::string key, frechet::Covariance convention) : key_(std::move(key)), convention_(convention) {}

  bool uses_real_set() const override { return true; }
  void update_real(const std::vector<Sticker>& real, int64_t first_index) override { add_real(real, first_index, real_); }
  MetricState real_state() const override { return real_.state(); }
  void load_real_state(const MetricState& state) override { real_ = frechet::FeatureMoments::from_state(state); }

  void update(const torch::Tensor& generated, const std::vector<Sticker>&, int64_t first_index) override {
    add_generated(generated, first_index, generated_);
  }
  MetricState state() const override { return generated_.state(); }
  void merge(const MetricState& state) override { generated_.merge(frechet::FeatureMoments::from_state(state)); }

  std::vector<MetricValue> result() override {
    if (generated_.count() == 0) throw data_error(key_ + ": no clips were evaluated");
    return {{key_, frechet::frechet_distance(real_.stats(convention_), generated_.stats(convention_)), false}};
  }

 protected:
  // Adds the features of a batch of real stickers / generated clips [B, T, 4, H, W] to `into`, naming a bad
  // row by its sticker ("real clip 12", "generated clip 3, frame 5") through FeatureMoments::add.
  virtual void add_real(const std::vector<Sticker>& real, int64_t first_index, frechet::FeatureMoments& into) = 0;
  virtual void add_generated(const torch::Tensor& generated, int64_t first_index, frechet::FeatureMoments& into) = 0;

 private:
  std::string key_;
  frechet::Covariance convention_;
  frechet::FeatureMoments real_, generated_;  // streamed: no feature matrix is kept
};

}  // namespace asg::metrics
