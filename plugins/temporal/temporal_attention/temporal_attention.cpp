// temporal_attention: the temporal transformer of VideoLDM (Blattmann et al. 2023) and AnimateDiff's
// motion module (Guo et al. 2023). Every spatial position of the clip is a sequence of T tokens (its
// features in each frame); multi-head self-attention runs over that sequence only, with a frame
// position embedding so the layer knows frame order. Structure, as in AnimateDiff's
// TemporalTransformer3DModel:
//
//   h = GroupNorm(x) -> Linear proj_in -> + position embedding
//   layers x { h += SelfAttention(LayerNorm(h)); h += FeedForward(LayerNorm(h)) }    (pre-norm)
//   y = x + Linear proj_out(h)      proj_out zero-initialised: the layer starts as the identity
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "asg/kinds/temporal.h"
#include "asg/nn/attention.h"
#include "asg/nn/positions.h"
#include "asg/plugin.h"

namespace asg::temporal {
namespace {

struct TemporalBlockImpl : torch::nn::Module {
  TemporalBlockImpl(int64_t channels, int64_t heads, int64_t ff_mult, nn::AttentionOptions attention_options)
      : heads(heads), attention_options(attention_options) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels})));
    qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(channels, 3 * channels).bias(false)));
    attn_out = register_module("attn_out", torch::nn::Linear(channels, channels));
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels})));
    ff = register_module("ff", torch::nn::Sequential(torch::nn::Linear(channels, ff_mult * channels), torch::nn::GELU(),
                                                     torch::nn::Linear(ff_mult * channels, channels)));
  }
  // h [N, T, C]
  torch::Tensor forward(torch::Tensor h) {
    const int64_t n = h.size(0), t = h.size(1), c = h.size(2);
    auto parts = qkv->forward(norm1->forward(h)).view({n, t, 3, heads, c / heads}).permute({2, 0, 3, 1, 4});
    auto o = nn::attention(parts[0], parts[1], parts[2], attention_options);  // [N, heads, T, d]
    h = h + attn_out->forward(o.transpose(1, 2).reshape({n, t, c}));
    return h + ff->forward(norm2->forward(h));
  }
  int64_t heads;
  nn::AttentionOptions attention_options;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear qkv{nullptr}, attn_out{nullptr};
  torch::nn::Sequential ff{nullptr};
};
TORCH_MODULE(TemporalBlock);

enum class Position { Sinusoidal, Learned, None };
const EnumNames<Position>& position_names() {
  static const EnumNames<Position> names{
      {Position::Sinusoidal, "sinusoidal"}, {Position::Learned, "learned"}, {Position::None, "none"}};
  return names;
}

class TemporalAttentionImpl final : public TemporalModule {
 public:
  TemporalAttentionImpl(const Params& p, const TemporalContext& ctx)
      : position_(position_names().parse(p.str("position"), "position")) {
    const int64_t c = ctx.channels, heads = p.integer("heads");
    if (c % heads != 0)
      throw config_error(fmt::format("heads = {} does not divide the {} channels at insertion "
                                     "point '{}' (valid: a divisor of every level's channels, e.g. {})",
                                     heads, c, ctx.name, std::gcd(c, heads)));
    nn::AttentionOptions options;
    options.backend = nn::parse_attention_backend(p.str("attention_backend"));
    norm_ = register_module("norm", torch::nn::GroupNorm(std::gcd(p.integer("groups"), c), c));
    proj_in_ = register_module("proj_in", torch::nn::Linear(c, c));
    if (position_ == Position::Learned) {
      position_table_ = register_parameter("position", torch::randn({ctx.frames, c}) * 0.02);
    } else if (position_ == Position::Sinusoidal) {
      position_table_ = register_buffer("position", nn::sinusoidal_positions(ctx.frames, c));
    }
    for (int64_t i = 0; i < p.integer("layers"); ++i)
      blocks_.push_back(register_module(fmt::format("block{}", i), TemporalBlock(c, heads, p.integer("ff_mult"), options)));
    proj_out_ = register_module("proj_out", torch::nn::Linear(c, c));
    torch::nn::init::zeros_(proj_out_->weight);
    torch::nn::init::zeros_(proj_out_->bias);
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    const int64_t b = x.size(0), c = x.size(1), t = x.size(2), hh = x.size(3), ww = x.size(4);
    // [B, C, T, H, W] -> one sequence of T tokens per (b, y, x): [B*H*W, T, C]
    auto h = norm_->forward(x).permute({0, 3, 4, 2, 1}).reshape({b * hh * ww, t, c});
    h = proj_in_->forward(h);
    if (position_table_.defined()) {
      if (t > position_table_.size(0))
        throw data_error(fmt::format("temporal_attention: clip has {} frames, the position table {}", t, position_table_.size(0)));
      h = h + position_table_.narrow(0, 0, t).unsqueeze(0);
    }
    for (auto& block : blocks_) h = block->forward(h);
    h = proj_out_->forward(h).view({b, hh, ww, t, c}).permute({0, 4, 3, 1, 2});
    return x + h;
  }

 private:
  Position position_;
  torch::nn::GroupNorm norm_{nullptr};
  torch::nn::Linear proj_in_{nullptr}, proj_out_{nullptr};
  torch::Tensor position_table_;
  std::vector<TemporalBlock> blocks_;
};

}  // namespace
}  // namespace asg::temporal

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TemporalModule>(
    "temporal_attention", "1.0.0",
    "VideoLDM/AnimateDiff temporal transformer: self-attention over frames per position, frame position embedding, zero-init out",
    std::vector<asg::ParamSpec>{
        asg::int_param("heads", 4, "attention heads; must divide the channels at every insertion point (AnimateDiff: 8)").range(1, 256),
        asg::int_param("layers", 1, "transformer blocks (self-attention + feed-forward)").range(1, 16),
        asg::int_param("ff_mult", 4, "feed-forward hidden width = channels x this").range(1, 16),
        asg::int_param("groups", 32, "GroupNorm groups at the input; reduced to gcd(groups, channels)").range(1, 1024),
        asg::enum_param("position", asg::temporal::Position::Sinusoidal, asg::temporal::position_names(),
                        "frame position embedding added after proj_in"),
        asg::enum_param("attention_backend", asg::nn::AttentionBackend::Auto, asg::nn::attention_backend_names(),
                        "attention kernel (see asg/nn/attention.h)"),
    },
    [](const asg::Params& p, const asg::TemporalContext& ctx) {
      return std::make_shared<asg::temporal::TemporalAttentionImpl>(p, ctx);
    }))
