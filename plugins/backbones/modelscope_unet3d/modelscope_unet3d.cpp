// modelscope_unet3d: ModelScope's text-to-video UNet (text-to-video-ms-1.7b), exact to diffusers'
// UNet3DConditionModel: the network the VSD2M baselines (VideoLDM-, VideoFactory-style) and the released STI
// code fine-tune. Every block, norm, head size and embedding is diffusers', with diffusers' parameter names,
// so its weights load by name; the one difference is the temporal slots: where UNet3DConditionModel has a
// TemporalConvLayer (`temp_convs`, after every ResNet: 22 of them at the default depth), this backbone calls
// the experiment's temporal plugin, so temporal_conv (ModelScope's own layer), STI, temporal attention or none
// sit exactly there.
//
//   conv_in -> transformer_in (temporal) -> down blocks [ResNet -> slot -> spatial transformer -> temporal
//   transformer] x layers, strided-conv downsample -> mid [ResNet -> slot -> spatial -> temporal -> ResNet ->
//   slot] -> up blocks [concat skip -> ResNet -> slot -> spatial -> temporal] x (layers + 1), nearest
//   upsample + conv -> GroupNorm -> SiLU -> conv_out
//
// Timestep: sinusoidal (flip_sin_to_cos, shift 0) -> Linear -> SiLU -> Linear, added in every ResNet. Text:
// the caption tokens, cross-attended by every spatial transformer, padding included (the reference passes no
// mask); the pooled caption is not used. Heads are attention_head_dim (64) wide: C / 64 heads per level
// (diffusers' num_attention_heads naming quirk); transformer_in has 8 heads of 64.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/kinds/backbone.h"
#include "asg/nn/attention.h"
#include "asg/nn/resnet_block.h"
#include "asg/plugin.h"
#include "diffusers_transformers.h"

namespace asg::modelscope {
namespace {

torch::Tensor to_video(const torch::Tensor& x, int64_t frames) {  // [B*F, C, H, W] -> [B, C, F, H, W]
  return x.view({-1, frames, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
}
torch::Tensor to_frames(const torch::Tensor& v) {  // [B, C, F, H, W] -> [B*F, C, H, W]
  return v.permute({0, 2, 1, 3, 4}).reshape({-1, v.size(1), v.size(3), v.size(4)});
}

// diffusers' get_timestep_embedding with flip_sin_to_cos = True, downscale_freq_shift = 0, in float32.
torch::Tensor timestep_features(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  auto exponent = torch::arange(half, t.options().dtype(torch::kFloat32)) * (-std::log(10000.0));
  exponent = exponent / static_cast<double>(half);
  auto angles = t.to(torch::kFloat32).unsqueeze(1) * torch::exp(exponent).unsqueeze(0);
  auto features = torch::cat({torch::cos(angles), torch::sin(angles)}, 1);
  if (dim % 2 == 1) features = torch::nn::functional::pad(features, torch::nn::functional::PadFuncOptions({0, 1}));
  return features;
}

struct TimestepEmbeddingImpl : torch::nn::Module {
  TimestepEmbeddingImpl(int64_t in, int64_t out) {
    linear_1 = register_module("linear_1", torch::nn::Linear(in, out));
    linear_2 = register_module("linear_2", torch::nn::Linear(out, out));
  }
  torch::Tensor forward(const torch::Tensor& x) { return linear_2->forward(torch::silu(linear_1->forward(x))); }
  torch::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

// diffusers' Downsample2D(use_conv, padding 1, name "op") and Upsample2D(use_conv): a `conv` child each.
struct ResampleImpl : torch::nn::Module {
  ResampleImpl(int64_t channels, bool down) : down(down) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).stride(down ? 2 : 1).padding(1)));
  }
  // size: the upsample's output size (the skip connection's), as diffusers' forward_upsample_size.
  torch::Tensor forward(const torch::Tensor& x, std::vector<int64_t> size = {}) {
    if (down) return conv->forward(x);
    auto up = torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions().size(size).mode(torch::kNearest));
    return conv->forward(up);
  }
  bool down;
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Resample);

struct Settings {
  std::vector<int64_t> channels;
  std::vector<bool> down_attention, up_attention;
  int64_t layers = 2, head_dim = 64, groups = 32, cross_dim = 0, frames = 0;
  double eps = 1e-5;
  nn::AttentionOptions kernel;
};

// One level: ResNets, each followed by its temporal slot and (with attention) a spatial and a temporal
// transformer; diffusers' Cross/Down/UpBlock3D and, with `mid`, UNetMidBlock3DCrossAttn.
class LevelImpl : public torch::nn::Module {
 public:
  enum class Kind { Down, Mid, Up };
  // resnet_in[i], out: the ResNets' channels; the slot names are "<prefix>temp_convs.<i>".
  LevelImpl(Kind kind, const std::vector<int64_t>& resnet_in, int64_t out, bool attention, bool resample, const Settings& s, const std::string& prefix, int64_t height, int64_t width, int64_t& slot_index,
            const BackboneContext& ctx)
      : kind_(kind) {
    resnets_ = register_module("resnets", torch::nn::ModuleList());
    temp_convs_ = register_module("temp_convs", torch::nn::ModuleList());
    const int64_t temb = 4 * s.channels[0];
    // Every spatial transformer of UNet3DConditionModel projects with Linear layers (use_linear_projection).
    TransformerOptions t{out, out / s.head_dim, s.head_dim, s.cross_dim, s.groups, true, s.kernel};
    if (attention) {
      attentions_ = register_module("attentions", torch::nn::ModuleList());
      temp_attentions_ = register_module("temp_attentions", torch::nn::ModuleList());
    }
    for (size_t i = 0; i < resnet_in.size(); ++i) {
      resnets_->push_back(nn::ResnetBlock(nn::ResnetBlockOptions{resnet_in[i], out, temb, s.groups, s.eps, 0.0}));
      temp_convs_->push_back(ctx.make_temporal(
          TemporalContext{fmt::format("{}temp_convs.{}", prefix, i), out, s.frames, height, width, slot_index++}));
      // The mid block's transformers sit between its ResNets: one pair fewer than ResNets.
      if (attention && (kind != Kind::Mid || i + 1 < resnet_in.size())) {
        attentions_->push_back(SpatialTransformer(t));
        temp_attentions_->push_back(TemporalTransformer(t));
      }
    }
    if (resample) {
      resample_ = Resample(out, kind == Kind::Down);
      register_module(kind == Kind::Down ? "downsamplers" : "upsamplers", torch::nn::ModuleList(resample_));
    }
  }

  // Down: returns the output and appends each ResNet's output (and the downsampled one) to `skips`.
  // Up: pops a skip before each ResNet; `up_size` is the upsample's output size.
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context, int64_t frames,
                        std::vector<torch::Tensor>& skips, std::vector<int64_t> up_size = {}) {
    for (size_t i = 0; i < resnets_->size(); ++i) {
      if (kind_ == Kind::Up) {
        h = torch::cat({h, skips.back()}, 1);
        skips.pop_back();
      }
      h = resnets_[i]->as<nn::ResnetBlockImpl>()->forward(h, temb);
      h = to_frames(temp_convs_[i]->as<TemporalModule>()->forward(to_video(h, frames)));
      if (attentions_ && i < attentions_->size()) {
        h = attentions_[i]->as<SpatialTransformerImpl>()->forward(h, context);
        h = temp_attentions_[i]->as<TemporalTransformerImpl>()->forward(h, frames);
      }
      if (kind_ == Kind::Down) skips.push_back(h);
    }
    if (resample_) {
      h = resample_->forward(h, up_size);
      if (kind_ == Kind::Down) skips.push_back(h);
    }
    return h;
  }

 private:
  Kind kind_;
  torch::nn::ModuleList resnets_{nullptr}, temp_convs_{nullptr}, attentions_{nullptr}, temp_attentions_{nullptr};
  Resample resample_{nullptr};
};
TORCH_MODULE(Level);

const std::vector<std::string> kDownTypes = {"CrossAttnDownBlock3D", "DownBlock3D"};
const std::vector<std::string> kUpTypes = {"CrossAttnUpBlock3D", "UpBlock3D"};

std::vector<bool> parse_block_types(const std::vector<std::string>& types, const std::vector<std::string>& valid,
                                    const std::string& key) {
  std::vector<bool> attention;
  for (const auto& type : types) {
    if (type != valid[0] && type != valid[1])
      throw config_error(fmt::format("[backbone] {}: '{}' is not a block type of UNet3DConditionModel (valid: {}, {})", key, type,
                                     valid[0], valid[1]));
    attention.push_back(type == valid[0]);
  }
  return attention;
}

class ModelScopeUnet final : public Backbone {
 public:
  ModelScopeUnet(const Params& p, const BackboneContext& ctx) {
    Settings s;
    s.channels = p.integers("block_out_channels");
    s.down_attention = parse_block_types(p.strs("down_block_types"), kDownTypes, "down_block_types");
    s.up_attention = parse_block_types(p.strs("up_block_types"), kUpTypes, "up_block_types");
    s.layers = p.integer("layers_per_block");
    s.head_dim = p.integer("attention_head_dim");
    s.groups = p.integer("norm_num_groups");
    s.eps = p.real("norm_eps");
    s.frames = ctx.frames;
    s.kernel.backend = nn::parse_attention_backend(p.str("attention_backend"));
    s.cross_dim = p.integer("cross_attention_dim") > 0 ? p.integer("cross_attention_dim") : ctx.text_dim;
    validate(s, ctx);

    const size_t levels = s.channels.size();
    const int64_t c0 = s.channels[0], temb = 4 * c0;
    conv_in_ = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(ctx.channels + ctx.condition_channels, c0, 3).padding(1)));
    time_embedding_ = register_module("time_embedding", TimestepEmbedding(c0, temb));
    transformer_in_ = register_module("transformer_in", TemporalTransformer(TransformerOptions{c0, 8, s.head_dim, 0, s.groups, false, s.kernel}));

    int64_t slot = 0, h = ctx.height, w = ctx.width;
    std::vector<std::pair<int64_t, int64_t>> sizes;  // each level's input size
    down_blocks_ = register_module("down_blocks", torch::nn::ModuleList());
    int64_t out = c0;
    for (size_t i = 0; i < levels; ++i) {
      const int64_t in = out;
      out = s.channels[i];
      std::vector<int64_t> resnet_in(static_cast<size_t>(s.layers), out);
      resnet_in[0] = in;
      sizes.push_back({h, w});
      const bool last = i + 1 == levels;
      down_blocks_->push_back(Level(LevelImpl::Kind::Down, resnet_in, out, s.down_attention[i], !last, s,
                                    fmt::format("down_blocks.{}.", i), h, w, slot, ctx));
      if (!last) h = (h + 1) / 2, w = (w + 1) / 2;  // stride 2, padding 1
    }
    mid_block_ = register_module("mid_block", Level(LevelImpl::Kind::Mid, std::vector<int64_t>{out, out}, out, true, false, s, "mid_block.", h, w, slot, ctx));
    up_blocks_ = register_module("up_blocks", torch::nn::ModuleList());
    // Skip channels in the order the up path pops them: the down path's outputs, reversed.
    std::vector<int64_t> skip_channels = {c0};
    for (size_t i = 0; i < levels; ++i) {
      for (int64_t j = 0; j < s.layers; ++j) skip_channels.push_back(s.channels[i]);
      if (i + 1 < levels) skip_channels.push_back(s.channels[i]);
    }
    int64_t prev = out;
    for (size_t i = 0; i < levels; ++i) {
      const size_t level = levels - 1 - i;
      const int64_t channels = s.channels[level];
      std::vector<int64_t> resnet_in;
      for (int64_t j = 0; j <= s.layers; ++j) {
        resnet_in.push_back((j == 0 ? prev : channels) + skip_channels.back());
        skip_channels.pop_back();
      }
      const bool last = i + 1 == levels;
      const auto [lh, lw] = sizes[level];
      up_blocks_->push_back(Level(LevelImpl::Kind::Up, resnet_in, channels, s.up_attention[i], !last, s,
                                  fmt::format("up_blocks.{}.", i), lh, lw, slot, ctx));
      prev = channels;
    }
    conv_norm_out_ = register_module("conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(s.groups, c0).eps(s.eps)));
    conv_out_ = register_module("conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(c0, ctx.channels, 3).padding(1)));
    time_dim_ = c0;
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const TextEmbedding& text) override {
    const int64_t f = x.size(2);
    auto temb = time_embedding_->forward(timestep_features(t, time_dim_).to(x.dtype())).repeat_interleave(f, 0);
    auto context = text.tokens.repeat_interleave(f, 0);
    auto h = conv_in_->forward(to_frames(x));
    h = transformer_in_->forward(h, f);
    std::vector<torch::Tensor> skips = {h};
    for (const auto& block : *down_blocks_) h = block->as<LevelImpl>()->forward(h, temb, context, f, skips);
    h = mid_block_->forward(h, temb, context, f, skips);
    for (size_t i = 0; i < up_blocks_->size(); ++i) {
      auto* level = up_blocks_[i]->as<LevelImpl>();
      // The upsample goes to the size of the skip the next level pops last (diffusers' forward_upsample_size).
      std::vector<int64_t> size;
      if (i + 1 < up_blocks_->size()) {
        const auto& next_skip = skips[skips.size() - resnets_per_up_block() - 1];
        size = {next_skip.size(2), next_skip.size(3)};
      }
      h = level->forward(h, temb, context, f, skips, size);
    }
    h = conv_out_->forward(torch::silu(conv_norm_out_->forward(h)));
    return to_video(h, f);
  }

 private:
  size_t resnets_per_up_block() const { return static_cast<size_t>(layers_ + 1); }

  void validate(const Settings& s, const BackboneContext& ctx) {
    layers_ = s.layers;
    const size_t levels = s.channels.size();
    if (levels == 0) throw config_error("[backbone] block_out_channels is empty (valid: one channel count per level, e.g. [320, 640, 1280, 1280])");
    if (s.down_attention.size() != levels || s.up_attention.size() != levels)
      throw config_error(fmt::format("[backbone] down_block_types ({}) and up_block_types ({}) need one entry per block_out_channels "
                                     "entry ({})",
                                     s.down_attention.size(), s.up_attention.size(), levels));
    for (int64_t c : s.channels) {
      if (c % s.groups != 0)
        throw config_error(fmt::format("[backbone] block_out_channels entry {} is not divisible by norm_num_groups = {}", c, s.groups));
      if (c % s.head_dim != 0)
        throw config_error(fmt::format("[backbone] block_out_channels entry {} is not divisible by attention_head_dim = {} (heads are "
                                       "{} channels wide)",
                                       c, s.head_dim, s.head_dim));
    }
    if (ctx.text_dim > 0 && s.cross_dim != ctx.text_dim)
      throw config_error(fmt::format("[backbone] cross_attention_dim = {} but the text encoder gives {} (valid: {}, or 0 to take it)",
                                     s.cross_dim, ctx.text_dim, ctx.text_dim));
  }

  int64_t time_dim_ = 0, layers_ = 2;
  torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  TimestepEmbedding time_embedding_{nullptr};
  TemporalTransformer transformer_in_{nullptr};
  torch::nn::ModuleList down_blocks_{nullptr}, up_blocks_{nullptr};
  Level mid_block_{nullptr};
  torch::nn::GroupNorm conv_norm_out_{nullptr};
};

}  // namespace
}  // namespace asg::modelscope

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Backbone>(
    "modelscope_unet3d", "1.0.0",
    "ModelScope's text-to-video UNet, exact to diffusers' UNet3DConditionModel, with the experiment's temporal module in its temp_convs slots",
    std::vector<asg::ParamSpec>{
        asg::int_list_param("block_out_channels", {320, 640, 1280, 1280}, "channels per level (ModelScope: 320, 640, 1280, 1280)")
            .range(1, 65536),
        asg::string_list_param("down_block_types", {"CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"},
                               "per level: CrossAttnDownBlock3D (with transformers) or DownBlock3D")
            .one_of({"CrossAttnDownBlock3D", "DownBlock3D"}),
        asg::string_list_param("up_block_types", {"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"},
                               "per level, deepest first: CrossAttnUpBlock3D or UpBlock3D")
            .one_of({"CrossAttnUpBlock3D", "UpBlock3D"}),
        asg::int_param("layers_per_block", 2, "ResNets per down level (up levels have one more)").range(1, 16),
        asg::int_param("attention_head_dim", 64, "channels per attention head (each level has channels / this heads)").range(1, 4096),
        asg::int_param("norm_num_groups", 32, "GroupNorm groups").range(1, 1024),
        asg::float_param("norm_eps", 1e-5, "eps of the ResNets' and the output's GroupNorms").range(0, 1),
        asg::int_param("cross_attention_dim", 0, "text token width the cross-attention expects; 0 = the text encoder's (ModelScope: 1024)")
            .range(0, 65536),
        asg::enum_param("attention_backend", asg::nn::AttentionBackend::Auto, asg::nn::attention_backend_names(),
                        "attention kernel (see asg/nn/attention.h)"),
    },
    [](const asg::Params& p, const asg::BackboneContext& ctx) { return std::make_shared<asg::modelscope::ModelScopeUnet>(p, ctx); }))
