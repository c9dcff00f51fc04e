// sti: the Spatial-Temporal Interaction layer of VSD2M (arXiv 2412.08259), exact to its released code
// (`vldm/sti_temporal_block.py` in mails9523/mails9523.github.io; the defaults are
// SpatioTemporalInteractionLayerDownSample, the class the released UNet blocks import). Low-frame-rate
// stickers jump far between frames, further than a (3,1,1) temporal conv sees, so STI adds a branch that
// attends jointly over all frames and positions of the clip. For x [B, C, F, H, W]:
//
//   semantic  s = Up_nearest(Attention(tokens(AvgPool2x2(x)))) + x      tokens: F*h*w of C per clip
//   detail    d = `detail_layers` x ResnetBlock2D(F -> F, 1 group) over x as [(B*C), F, H, W]
//             or ModelScope's temporal conv stack (released 3-weight and full-resolution classes)
//   fusion    y = w1 s + w2 d   |   w1 s + w2 d + w3 x   |   FeedForward(concat[s, d]) per pixel
//   norm      y = GroupNorm_32(y) per frame, eps 1e-6 ("added to avoid loss NaN" in the released code)
//
// Parameters carry the released names (transformer_blocks.to_q, conv_layers.0.norm1, conv_layer.conv1.0,
// w1, w2, w3, norm, feed_forward.net.0.proj), so the released layer's weights load without renaming. The
// README maps every option to the line of the released file it follows; tests/reference/sti_reference.py
// builds the released classes from diffusers' own modules and sti_test.cpp compares the outputs.
#include <fmt/format.h>
#include <torch/torch.h>

#include <numeric>

#include "asg/kinds/temporal.h"
#include "asg/nn/attention.h"
#include "asg/nn/diffusers_attention.h"
#include "asg/nn/feed_forward.h"
#include "asg/nn/resnet_block.h"
#include "asg/nn/temporal_conv_stack.h"
#include "asg/plugin.h"

namespace asg::temporal {
namespace {

enum class Detail { FrameResnet, TemporalConv };
const EnumNames<Detail>& detail_names() {
  static const EnumNames<Detail> names{{Detail::FrameResnet, "frame_resnet"}, {Detail::TemporalConv, "temporal_conv"}};
  return names;
}
// Which frames the temporal conv detail sees together: the clip's, or (as the released 3-weight and
// full-resolution classes call it, without num_frames) each frame alone.
enum class DetailFrames { Clip, Each };
const EnumNames<DetailFrames>& detail_frames_names() {
  static const EnumNames<DetailFrames> names{{DetailFrames::Clip, "clip"}, {DetailFrames::Each, "each"}};
  return names;
}
enum class Fusion { Scalar, ThreeWeight, Mlp };
const EnumNames<Fusion>& fusion_names() {
  static const EnumNames<Fusion> names{{Fusion::Scalar, "scalar"}, {Fusion::ThreeWeight, "three_weight"}, {Fusion::Mlp, "mlp"}};
  return names;
}
// Which tokens attend to each other: one clip's, or (the released full-resolution class) the whole batch's.
enum class AttentionOver { Clip, Batch };
const EnumNames<AttentionOver>& attention_over_names() {
  static const EnumNames<AttentionOver> names{{AttentionOver::Clip, "clip"}, {AttentionOver::Batch, "batch"}};
  return names;
}
// The final GroupNorm's statistics: per frame (released: it runs on [B*F, C, H, W]) or per clip.
enum class NormOver { Frame, Clip };
const EnumNames<NormOver>& norm_over_names() {
  static const EnumNames<NormOver> names{{NormOver::Frame, "frame"}, {NormOver::Clip, "clip"}};
  return names;
}

// [B, C, F, H, W] <-> [B*F, C, H, W]: the released code's frame-batched layout.
torch::Tensor to_frames(const torch::Tensor& x) { return x.transpose(1, 2).flatten(0, 1); }
torch::Tensor from_frames(const torch::Tensor& y, int64_t batch) {
  return y.unflatten(0, {batch, y.size(0) / batch}).transpose(1, 2);
}

class StiImpl final : public TemporalModule {
 public:
  StiImpl(const Params& p, const TemporalContext& ctx)
      : downsample_(p.boolean("downsample")),
        detail_kind_(detail_names().parse(p.str("detail"), "detail")),
        detail_frames_(detail_frames_names().parse(p.str("detail_frames"), "detail_frames")),
        fusion_kind_(fusion_names().parse(p.str("fusion"), "fusion")),
        attention_over_(attention_over_names().parse(p.str("attention_over"), "attention_over")),
        norm_over_(norm_over_names().parse(p.str("norm_over"), "norm_over")) {
    const int64_t c = ctx.channels;
    const double eps = p.real("norm_eps");

    // Semantic branch (released lines 394-398): diffusers Attention(C, heads, dim_head).
    nn::DiffusersAttentionOptions attention;
    attention.query_dim = c;
    attention.heads = p.integer("heads");
    attention.dim_head = p.integer("head_dim");
    attention.kernel.backend = nn::parse_attention_backend(p.str("attention_backend"));
    attention_ = register_module("transformer_blocks", nn::DiffusersAttention(attention));

    // Detail branch.
    if (detail_kind_ == Detail::FrameResnet) {
      // Released lines 402-409: ResnetBlock2D(8 -> 8, groups = 1, temb = None); the 8 is the frame count.
      conv_layers_ = register_module("conv_layers", torch::nn::ModuleList());
      for (int64_t i = 0; i < p.integer("detail_layers"); ++i) {
        nn::ResnetBlock block(nn::ResnetBlockOptions{ctx.frames, ctx.frames, 0, 1, eps, 0.0});
        if (p.boolean("detail_zero_init")) {
          torch::NoGradGuard no_grad;
          block->conv2()->weight.zero_();
          block->conv2()->bias.zero_();
        }
        conv_layers_->push_back(block);
        frame_blocks_.push_back(block);
      }
      detail_identity_ = p.boolean("detail_zero_init");
    } else {
      // Released lines 489-492 (3-weight class) and 336-339 (full-resolution class): the file's own
      // TemporalConvLayer, ModelScope's (4 layers, 32 groups, last conv zeroed).
      conv_layer_ = register_module("conv_layer", nn::TemporalConvStack(nn::TemporalConvStackOptions{
                                                      c, p.integer("detail_layers"), p.integer("groups"), 1, 0.0}));
      detail_identity_ = true;
    }

    // Fusion.
    if (fusion_kind_ == Fusion::Mlp) {
      // Released lines 411-414 (definition) and 364-365 (use), commented out there: diffusers'
      // FeedForward(2C -> C) on concat[s, d] per pixel.
      feed_forward_ = register_module("feed_forward", nn::FeedForward(nn::FeedForwardOptions{2 * c, c, 4}));
    } else {
      const bool three = fusion_kind_ == Fusion::ThreeWeight;  // released lines 497-499: w1 = w2 = 0, w3 = 1
      w1_ = register_parameter("w1", torch::zeros({1}));
      w2_ = register_parameter("w2", three ? torch::zeros({1}) : torch::ones({1}));
      if (three) w3_ = register_parameter("w3", torch::ones({1}));
    }
    if (p.boolean("norm_after_fusion"))  // released line 420
      norm_ = register_module("norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(std::gcd(p.integer("groups"), c), c).eps(eps)));
  }

  // y = x at init needs the fusion to pass the detail (scalar) or the input (three_weight) straight
  // through, an identity detail branch for the scalar fusion, and no norm.
  bool identity_at_init() const override {
    if (norm_ || fusion_kind_ == Fusion::Mlp) return false;
    return fusion_kind_ == Fusion::ThreeWeight || detail_identity_;
  }

  torch::Tensor forward(const torch::Tensor& x) override {
    auto s = semantic(x), d = detail(x);
    torch::Tensor y;
    if (feed_forward_)
      y = feed_forward_->forward(torch::cat({s, d}, 1).movedim(1, -1)).movedim(-1, 1);
    else if (w3_.defined())
      y = w1_ * s + w2_ * d + w3_ * x;
    else
      y = w1_ * s + w2_ * d;
    if (!norm_) return y;
    if (norm_over_ == NormOver::Clip) return norm_->forward(y);
    return from_frames(norm_->forward(to_frames(y)), x.size(0));
  }

 private:
  // Released lines 426-433 (full-resolution class: 355-358, no pooling, one sequence for the batch).
  torch::Tensor semantic(const torch::Tensor& x) {
    const int64_t b = x.size(0), c = x.size(1), f = x.size(2);
    auto pooled = downsample_ ? torch::avg_pool3d(x, {1, 2, 2}) : x;  // [B, C, F, h, w]; floors an odd size, as released
    const int64_t h = pooled.size(3), w = pooled.size(4);
    auto tokens = pooled.permute({0, 2, 3, 4, 1});  // [B, F, h, w, C]: the released token order
    tokens = attention_over_ == AttentionOver::Clip ? tokens.reshape({b, f * h * w, c}) : tokens.reshape({1, b * f * h * w, c});
    auto out = attention_->forward(tokens).reshape({b, f, h, w, c}).permute({0, 4, 1, 2, 3});  // [B, C, F, h, w]
    if (downsample_)
      out = torch::nn::functional::interpolate(
          out, torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{f, x.size(3), x.size(4)}).mode(torch::kNearest));
    return out + x;
  }

  torch::Tensor detail(const torch::Tensor& x) {
    if (conv_layer_) {
      if (detail_frames_ == DetailFrames::Clip) return conv_layer_->forward(x);
      return from_frames(conv_layer_->forward(to_frames(x).unsqueeze(2)).squeeze(2), x.size(0));
    }
    // Released lines 436-447: frames as channels.
    const int64_t b = x.size(0), c = x.size(1), f = x.size(2), h = x.size(3), w = x.size(4);
    auto frames_as_channels = x.reshape({b * c, f, h, w});
    for (auto& block : frame_blocks_) frames_as_channels = block->forward(frames_as_channels);
    return frames_as_channels.view({b, c, f, h, w});
  }

  bool downsample_;
  Detail detail_kind_;
  DetailFrames detail_frames_;
  Fusion fusion_kind_;
  AttentionOver attention_over_;
  NormOver norm_over_;
  bool detail_identity_ = false;
  nn::DiffusersAttention attention_{nullptr};
  torch::nn::ModuleList conv_layers_{nullptr};
  std::vector<nn::ResnetBlock> frame_blocks_;
  nn::TemporalConvStack conv_layer_{nullptr};
  torch::Tensor w1_, w2_, w3_;
  nn::FeedForward feed_forward_{nullptr};
  torch::nn::GroupNorm norm_{nullptr};
};

}  // namespace
}  // namespace asg::temporal

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::TemporalModule>(
    "sti", "2.0.0", "VSD2M Spatial-Temporal Interaction, exact to the released code: joint space-time attention + frame-mixing detail branch, fused",
    std::vector<asg::ParamSpec>{
        asg::int_param("heads", 8, "semantic branch: attention heads (released: 8)").range(1, 256),
        asg::int_param("head_dim", 32, "semantic branch: channels per head (released: 32; full-resolution class: 16)").range(1, 1024),
        asg::bool_param("downsample", true, "semantic branch: 2x2 average pool before attention, nearest upsample after"),
        asg::enum_param("attention_over", asg::temporal::AttentionOver::Clip, asg::temporal::attention_over_names(),
                        "semantic branch: tokens of one clip attend to each other, or of the whole batch (released full-resolution class)"),
        asg::enum_param("detail", asg::temporal::Detail::FrameResnet, asg::temporal::detail_names(),
                        "detail branch: frames-as-channels ResNet (released) or ModelScope temporal conv (3-weight and full-resolution classes)"),
        asg::int_param("detail_layers", 2, "detail branch: ResNet blocks (released: 2), or temporal conv layers (released: 4)").range(1, 16),
        asg::enum_param("detail_frames", asg::temporal::DetailFrames::Clip, asg::temporal::detail_frames_names(),
                        "temporal_conv detail: convolve along the clip, or each frame alone (as the released 3-weight and full-resolution classes call it)"),
        asg::bool_param("detail_zero_init", false, "frame_resnet: zero-init each block's last conv (released: false)"),
        asg::enum_param("fusion", asg::temporal::Fusion::Scalar, asg::temporal::fusion_names(),
                        "w1 s + w2 d (released), w1 s + w2 d + w3 x (3-weight class), or a per-pixel FeedForward of concat[s, d] (released, commented out)"),
        asg::bool_param("norm_after_fusion", true, "GroupNorm after the fusion (released: true; then not the identity at init)"),
        asg::enum_param("norm_over", asg::temporal::NormOver::Frame, asg::temporal::norm_over_names(),
                        "the final GroupNorm's statistics: per frame (released) or per clip"),
        asg::float_param("norm_eps", 1e-6, "eps of the final GroupNorm and of the frame_resnet blocks' norms (released: 1e-6)").range(0, 1),
        asg::int_param("groups", 32, "GroupNorm groups (final norm, temporal conv detail); reduced to gcd with channels").range(1, 1024),
        asg::enum_param("attention_backend", asg::nn::AttentionBackend::Auto, asg::nn::attention_backend_names(),
                        "attention kernel (see asg/nn/attention.h)"),
    },
    [](const asg::Params& p, const asg::TemporalContext& ctx) { return std::make_shared<asg::temporal::StiImpl>(p, ctx); }))
