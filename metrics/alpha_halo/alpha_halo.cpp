// alpha_halo: whether a sticker's alpha agrees with its colour at the edges. A transparent sticker is seen
// composited over whatever is behind it, so colour that belongs to another background shows as a halo: edge
// pixels whose straight colour is not the object's (a matte colour baked in, or premultiplied colour stored as
// straight colour, which darkens the edges), or an opaque ring of the matte colour around the object (alpha that
// took in some of the background). Few video metrics look at alpha at all (ILDiff, arXiv 2412.20901, is the
// anchor for why it matters).
//
// On straight RGBA in [0, 1], per frame, with `opaque` = alpha >= `opaque_above`, `transparent` = alpha <=
// `transparent_below`, and neighbours the 8 around a pixel (pixels outside the canvas are neither):
//   alpha_halo            edge pixels = neither opaque nor transparent, with an opaque neighbour. Each one's error
//                         is the mean over R, G, B of |its colour - the mean colour of its opaque neighbours| (the
//                         object's colour next to it: an outline's colour where the sticker has an outline).
//                         Per clip: the mean error over its edge pixels (0 when it has none, e.g. binary alpha).
//   alpha_halo.matte_ring ring pixels = opaque, with a transparent neighbour. Per clip: the share of them whose
//                         colour is within `matte_tolerance` (max over R, G, B) of `matte` (0 when it has none).
//                         A die-cut sticker's white outline is such a ring too: read it against .reference.
// Each is the mean over generated clips (lower is better), and over the protocol's real set (real frames only) as
// alpha_halo.reference and alpha_halo.matte_ring_reference.
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/metric.h"
#include "asg/plugin.h"
#include "clip_stats.h"

namespace asg::metrics {
namespace {

class AlphaHalo final : public Metric {
 public:
  explicit AlphaHalo(const Params& p)
      : opaque_above_(p.real("opaque_above")),
        transparent_below_(p.real("transparent_below")),
        matte_(background_rgb(p.integers("matte"))),
        matte_tolerance_(p.real("matte_tolerance")) {
    if (transparent_below_ >= opaque_above_)
      throw config_error(fmt::format("alpha_halo: transparent_below = {} must be below opaque_above = {}", transparent_below_,
                                     opaque_above_));
  }

  bool uses_real_set() const override { return true; }
  void update_real(const std::vector<Sticker>& real, int64_t) override {
    for (const auto& r : real) add(reference_clip(r), real_halo_, real_ring_);
  }
  MetricState real_state() const override {
    MetricState s;
    real_halo_.save(s, "reference");
    real_ring_.save(s, "reference_ring");
    return s;
  }
  void load_real_state(const MetricState& s) override {
    real_halo_ = {};
    real_ring_ = {};
    real_halo_.merge(s, "reference");
    real_ring_.merge(s, "reference_ring");
  }

  void update(const torch::Tensor& generated, const std::vector<Sticker>&, int64_t) override { add(generated, halo_, ring_); }
  MetricState state() const override {
    MetricState s;
    halo_.save(s, "generated");
    ring_.save(s, "generated_ring");
    return s;
  }
  void merge(const MetricState& s) override {
    halo_.merge(s, "generated");
    ring_.merge(s, "generated_ring");
  }
  std::vector<MetricValue> result() override {
    if (halo_.count == 0) throw data_error("alpha_halo: no clips were evaluated");
    return {{"alpha_halo", halo_.mean(), false},
            {"alpha_halo.matte_ring", ring_.mean(), false},
            {"alpha_halo.reference", real_halo_.mean(), false},
            {"alpha_halo.matte_ring_reference", real_ring_.mean(), false}};
  }

 private:
  // clips [B, T, 4, H, W] -> per-clip halo error and matte-ring share, each [B].
  void add(const torch::Tensor& clips, ClipMean& halo, ClipMean& ring) const {
    const int64_t b = clips.size(0), t = clips.size(1), h = clips.size(3), w = clips.size(4);
    const auto frames = clips.to(torch::kFloat64).reshape({b * t, 4, h, w});
    const auto rgb = frames.slice(1, 0, 3), alpha = frames.slice(1, 3, 4);
    const auto opaque = (alpha >= opaque_above_).to(torch::kFloat64);
    const auto transparent = (alpha <= transparent_below_).to(torch::kFloat64);
    const auto window = torch::ones({1, 1, 3, 3}, torch::kFloat64);
    namespace F = torch::nn::functional;
    const auto count_around = [&](const torch::Tensor& mask) {  // over the 8 neighbours (and the centre, masked out below)
      return F::conv2d(mask, window, F::Conv2dFuncOptions().padding(1));
    };
    const auto opaque_around = count_around(opaque);
    const auto colour_around = F::conv2d(rgb * opaque, window.expand({3, 1, 3, 3}), F::Conv2dFuncOptions().padding(1).groups(3));
    // An edge pixel is not opaque itself, so every opaque pixel counted around it is a neighbour.
    const auto edge = ((1 - opaque) * (1 - transparent) * (opaque_around > 0).to(torch::kFloat64)).reshape({b, -1});
    const auto error = (rgb - colour_around / opaque_around.clamp_min(1)).abs().mean(1).reshape({b, -1});
    const auto edges = edge.sum(1);
    halo.add(torch::where(edges > 0, (error * edge).sum(1) / edges.clamp_min(1), torch::zeros_like(edges)));

    const auto ring_mask = (opaque * (count_around(transparent) > 0).to(torch::kFloat64)).reshape({b, -1});
    const auto matte = torch::tensor({matte_[0], matte_[1], matte_[2]}, torch::kFloat64).view({1, 3, 1, 1});
    const auto matte_like = ((rgb - matte).abs().amax(1) <= matte_tolerance_).to(torch::kFloat64).reshape({b, -1});
    const auto rings = ring_mask.sum(1);
    ring.add(torch::where(rings > 0, (ring_mask * matte_like).sum(1) / rings.clamp_min(1), torch::zeros_like(rings)));
  }

  double opaque_above_, transparent_below_;
  std::array<double, 3> matte_;
  double matte_tolerance_;
  ClipMean halo_, ring_, real_halo_, real_ring_;
};

}  // namespace
}  // namespace asg::metrics

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Metric>(
    "alpha_halo", "1.0.0",
    "alpha-colour agreement at the edges: colour error of semi-transparent edge pixels, share of the opaque rim in the matte colour",
    std::vector<asg::ParamSpec>{
        asg::float_param("opaque_above", 0.95, "alpha at or above this is opaque").range(0, 1),
        asg::float_param("transparent_below", 0.05, "alpha at or below this is transparent").range(0, 1),
        asg::int_list_param("matte", {255, 255, 255}, "RGB of the background a halo would come from (white: stickers are "
                                                       "usually cut from white)")
            .range(0, 255)
            .length(3, 3),
        asg::float_param("matte_tolerance", 0.1, "largest per-channel difference (on [0, 1]) from `matte` that counts as matte")
            .range(0, 1),
    },
    [](const asg::Params& p, const asg::MetricContext&) { return std::make_shared<asg::metrics::AlphaHalo>(p); }))
