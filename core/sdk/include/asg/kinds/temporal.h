// Temporal-module plugins: the layer a backbone places after each of its ResNet blocks to mix
// information across frames (ModelScope's temporal conv, temporal attention, the paper's STI layer, or
// nothing).
//
// Contract
// - forward() takes and returns [B, C, T, H, W] with the same shape, dtype and device.
// - A module should start as (or close to) the identity on its input, so that swapping temporal modules
//   in an ablation changes the backbone's behaviour at initialisation as little as possible: zero-
//   initialise the last layer of a residual branch, or gate it with a weight that starts at 0. A module
//   that cannot (STI with its GroupNorm after the fusion) says so: identity_at_init() returns false, and
//   the conformance suite (tests/temporal_conformance) checks the claim either way.
// - Every parameter gets gradients: nothing is registered that forward() does not use.
// - Given the same input and parameters, forward() is deterministic.
// - Mixing across frames is the point: a change in frame 0 must be able to reach frame T-1 (the
//   conformance suite checks this for every module but `none`).
// - The backbone creates one instance per insertion point through BackboneContext::make_temporal;
//   TemporalContext says the point's name, index, channel count, frame count and spatial size. A module that
//   cannot work there (heads that do not divide the channels, a 2x downsample of an odd size) throws
//   asg::Error(Config) naming the key, its value and the point; the core reports it before anything is
//   recorded.
// - The core seeds the global generator from (run seed, "init.temporal." + name) around each
//   construction, so a module's initial weights depend on its point alone, and the backbone's own
//   weights are bit-identical whichever temporal module an experiment picks.
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <string>

namespace asg {

struct TemporalContext {
  std::string name;      // insertion point, unique within the backbone: "down0_0", "mid", "up1_0", ...
  int64_t channels = 0;
  int64_t frames = 0;
  int64_t height = 0;    // spatial size at the insertion point
  int64_t width = 0;
  int64_t index = 0;     // the point's place in the backbone's order of points: 0, 1, 2, ... (a module
                         // that alternates between consecutive blocks, e.g. swap_attention, reads it)
};

class TemporalModule : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;  // required
  // True if forward(x) == x for freshly constructed parameters (see the contract above).
  virtual bool identity_at_init() const { return true; }
};

template <>
struct PluginKindTraits<TemporalModule> {
  static constexpr const char* name = "temporal";
  using Context = TemporalContext;
};

}  // namespace asg
