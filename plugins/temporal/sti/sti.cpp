// sti: the Spatial-Temporal Interaction layer of VSD2M (arXiv 2412.08259), as released with its follow-up
// RDTF (`vldm/sti_temporal_block.py`, SpatioTemporalInteractionLayerDownSample). Low-frame-rate stickers
// jump far between frames, further than a (3,1,1) temporal conv sees, so STI adds a branch that attends
// jointly over all frames and positions of the clip. For x [B, C, F, H, W]:
//
//   semantic  s = Up_nearest(MHSA(fold(AvgPool2x2(x)))) + x       fold: B x (F*H/2*W/2) tokens of C
//             MHSA: heads x head_dim (released: 8 x 32), no positional embedding, no text
//   detail    d = frames-as-channels ResNet: x as [(B*C), F, H, W] through `detail_layers` x
//                 ResnetBlock2D(F -> F, GroupNorm with 1 group), 3x3 convs that mix all frames
//             or d = ModelScope's temporal conv (4 x GroupNorm-SiLU-Conv3d (3,1,1), residual)
//   fusion    y = w1 * s + w2 * d with learnable scalars w1 = 0, w2 = 1 at init (released), or weights
//             predicted per clip by an MLP from the pooled branches (the RDTF paper's figure)
//   norm      y = GroupNorm_32(y) ("added to avoid loss NaN" in the released code); optional
//
// Every choice is a parameter. With norm_after_fusion = false and an identity-at-init detail branch
// (temporal_conv, or frame_resnet with detail_zero_init), STI starts as the identity; as released it
// does not, and identity_at_init() says so.
//
// Memory: attention over F*H*W tokens is O(L^2) when written naively; asg::nn::attention's default
// (scaled_dot_product_attention) does not keep the probabilities. bench/asg_bench_temporal reports STI's peak
// memory against naive attention at the paper's size.
#include <fmt/format.h>
#include <torch/torch.h>

#include <numeric>

#include "asg/kinds/temporal.h"
#include "asg/nn/attention.h"
#include "asg/nn/temporal_conv_stack.h"
#include "asg/plugin.h"

namespace asg::temporal {
namespace {

// diffusers ResnetBlock2D without a time embedding: GN-SiLU-conv3x3-GN-SiLU-conv3x3, plus the input.
struct FrameResBlockImpl : torch::nn::Module {
  FrameResBlockImpl(int64_t channels, bool zero_init) {
    norm1 = register_module("norm1", torch::nn::GroupNorm(1, channels));
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)));
    norm2 = register_module("norm2", torch::nn::GroupNorm(1, channels));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)));
    if (zero_init) {
      torch::nn::init::zeros_(conv2->weight);
      torch::nn::init::zeros_(conv2->bias);
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = conv1->forward(torch::silu(norm1->forward(x)));
    return x + conv2->forward(torch::silu(norm2->forward(h)));
  }
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(FrameResBlock);

enum class Detail { FrameResnet, TemporalConv };
const EnumNames<Detail>& detail_names() {
  static const EnumNames<Detail> names{{Detail::FrameResnet, "frame_resnet"}, {Detail::TemporalConv, "temporal_conv"}};
  return names;
}
enum class Fusion { Scalar, Mlp };
const EnumNames<Fusion>& fusion_names() {
  static const EnumNames<Fusion> names{{Fusion::Scalar, "scalar"}, {Fusion::Mlp, "mlp"}};
  return names;
}

class StiImpl final : public TemporalModule {
 public:
  StiImpl(const Params& p, const TemporalContext& ctx)
      : heads_(p.integer("heads")),
        head_dim_(p.integer("head_dim")),
        downsample_(p.boolean("downsample")),
        detail_kind_(detail_names().parse(p.str("detail"), "detail")),
        fusion_kind_(fusion_names().parse(p.str("fusion"), "fusion")) {
    const int64_t c = ctx.channels;
    if (downsample_ && (ctx.height % 2 != 0 || ctx.width % 2 != 0))
      throw config_error(fmt::format("downsample = true needs an even height and width, but insertion point '{}' "
                                     "is {}x{} (valid there: downsample = false)",
                                     ctx.name, ctx.height, ctx.width));
    attention_options_.backend = nn::parse_attention_backend(p.str("attention_backend"));

    // Semantic branch: diffusers Attention(query_dim = C, heads, dim_head): q/k/v without bias, out with.
    const int64_t inner = heads_ * head_dim_;
    to_q_ = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(c, inner).bias(false)));
    to_k_ = register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(c, inner).bias(false)));
    to_v_ = register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(c, inner).bias(false)));
    to_out_ = register_module("to_out", torch::nn::Linear(inner, c));

    // Detail branch.
    if (detail_kind_ == Detail::FrameResnet) {
      for (int64_t i = 0; i < p.integer("detail_layers"); ++i)
        frame_blocks_.push_back(
            register_module(fmt::format("detail{}", i), FrameResBlock(ctx.frames, p.boolean("detail_zero_init"))));
      detail_identity_ = p.boolean("detail_zero_init");
    } else {
      temporal_conv_ = register_module(
          "detail", nn::TemporalConvStack(nn::TemporalConvStackOptions{c, p.integer("detail_layers"), p.integer("groups"), 1, 0.0}));
      detail_identity_ = true;
    }

    // Fusion.
    if (fusion_kind_ == Fusion::Scalar) {
      w_semantic_ = register_parameter("w_semantic", torch::zeros({1}));
      w_detail_ = register_parameter("w_detail", torch::ones({1}));
    } else {
      const int64_t hidden = p.integer("fusion_hidden");
      fusion_mlp_ = register_module("fusion_mlp", torch::nn::Sequential(torch::nn::Linear(2 * c, hidden), torch::nn::SiLU(),
                                                                        torch::nn::Linear(hidden, 2)));
      auto last = fusion_mlp_->ptr<torch::nn::LinearImpl>(2);
      torch::NoGradGuard no_grad;
      last->weight.zero_();
      last->bias.copy_(torch::tensor({0.0f, 1.0f}));  // w1 = 0, w2 = 1 at init, as the scalar fusion
    }
    if (p.boolean("norm_after_fusion"))
      norm_ = register_module("norm", torch::nn::GroupNorm(std::gcd(p.integer("groups"), c), c));
  }

  bool identity_at_init() const override { return !norm_ && detail_identity_; }

  torch::Tensor forward(const torch::Tensor& x) override {
    auto s = semantic(x), d = detail(x);
    torch::Tensor y;
    if (fusion_mlp_) {
      auto pooled = torch::cat({s.mean({2, 3, 4}), d.mean({2, 3, 4})}, 1);     // [B, 2C]
      auto w = fusion_mlp_->forward(pooled).view({x.size(0), 2, 1, 1, 1, 1});  // [B, 2, 1, 1, 1, 1]
      y = w.select(1, 0) * s + w.select(1, 1) * d;
    } else {
      y = w_semantic_ * s + w_detail_ * d;
    }
    return norm_ ? norm_->forward(y) : y;
  }

 private:
  torch::Tensor semantic(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), f = x.size(2);
    auto pooled = downsample_ ? torch::avg_pool3d(x, {1, 2, 2}) : x;  // [B, C, F, h, w]
    const int64_t h = pooled.size(3), w = pooled.size(4), l = f * h * w;
    auto tokens = pooled.flatten(2).transpose(1, 2);  // [B, F*h*w, C]
    auto split = [&](const torch::Tensor& t) { return t.view({b, l, heads_, head_dim_}).transpose(1, 2); };
    auto o = nn::attention(split(to_q_->forward(tokens)), split(to_k_->forward(tokens)), split(to_v_->forward(tokens)),
                           attention_options_);  // [B, heads, L, d]
    auto out = to_out_->forward(o.transpose(1, 2).reshape({b, l, heads_ * head_dim_}));  // [B, L, C]
    out = out.transpose(1, 2).reshape({b, c, f, h, w});
    if (downsample_)
      out = torch::nn::functional::interpolate(
          out, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{f, x.size(3), x.size(4)}).mode(torch::kNearest));
    return out + x;
  }

  torch::Tensor detail(const torch::Tensor& x) {
    if (temporal_conv_) return temporal_conv_->forward(x);
    const int64_t b = x.size(0), c = x.size(1), f = x.size(2), h = x.size(3), w = x.size(4);
    auto frames_as_channels = x.reshape({b * c, f, h, w});
    for (auto& block : frame_blocks_) frames_as_channels = block->forward(frames_as_channels);
    return frames_as_channels.view({b, c, f, h, w});
  }

  int64_t heads_, head_dim_;
  bool downsample_;
  Detail detail_kind_;
  Fusion fusion_kind_;
  bool detail_identity_ = false;
  nn::AttentionOptions attention_options_;
  torch::nn::Linear to_q_{nullptr}, to_k_{nullptr}, to_v_{nullptr}, to_out_{nullptr};
  std::vector<FrameResBlock> frame_blocks_;
  nn::TemporalConvStack temporal_conv_{nullptr};
  torch::Tensor w_semantic_, w_detail_;
  torch::nn::Sequential fusion_mlp_{nullptr};
  torch::nn::GroupNorm norm_{nullptr};
};

}  // namespace
}  // namespace asg::temporal

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TemporalModule>(
    "sti", "1.0.0", "VSD2M Spatial-Temporal Interaction: joint space-time attention + frame-mixing detail branch, fused",
    std::vector<asg::ParamSpec>{
        asg::int_param("heads", 8, "semantic branch: attention heads (released: 8)").range(1, 256),
        asg::int_param("head_dim", 32, "semantic branch: channels per head (released: 32)").range(1, 1024),
        asg::bool_param("downsample", true, "semantic branch: 2x2 average pool before attention, nearest upsample after"),
        asg::enum_param("detail", asg::temporal::Detail::FrameResnet, asg::temporal::detail_names(),
                        "detail branch: frames-as-channels ResNet (released) or ModelScope temporal conv"),
        asg::int_param("detail_layers", 2, "detail branch: ResNet blocks, or temporal conv layers (released: 2)").range(1, 16),
        asg::bool_param("detail_zero_init", false, "frame_resnet: zero-init each block's last conv (released: false)"),
        asg::enum_param("fusion", asg::temporal::Fusion::Scalar, asg::temporal::fusion_names(),
                        "how the branches combine: learnable scalars (released) or MLP-predicted weights"),
        asg::int_param("fusion_hidden", 64, "mlp fusion: hidden width").range(1, 65536),
        asg::bool_param("norm_after_fusion", true, "GroupNorm after the fusion (released: true; then not the identity at init)"),
        asg::int_param("groups", 32, "GroupNorm groups (fusion norm, temporal conv detail); reduced to gcd with channels").range(1, 1024),
        asg::enum_param("attention_backend", asg::nn::AttentionBackend::Auto, asg::nn::attention_backend_names(),
                        "attention kernel (see asg/nn/attention.h)"),
    },
    [](const asg::Params& p, const asg::TemporalContext& ctx) { return std::make_shared<asg::temporal::StiImpl>(p, ctx); }))
