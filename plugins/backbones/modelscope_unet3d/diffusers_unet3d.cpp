// The UNet body of diffusers' UNet3DConditionModel and I2VGenXLUNet (see diffusers_unet3d.h).
#include "diffusers_unet3d.h"

#include <fmt/format.h>

#include <cmath>

#include "asg/error.h"
#include "asg/nn/resnet_block.h"
#include "asg/nn/swap_attention.h"
#include "diffusers_transformers.h"

namespace asg::modelscope {

torch::Tensor to_video(const torch::Tensor& x, int64_t frames) {
  return x.view({-1, frames, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
}
torch::Tensor to_frames(const torch::Tensor& v) { return v.permute({0, 2, 1, 3, 4}).reshape({-1, v.size(1), v.size(3), v.size(4)}); }

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

namespace {

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

const std::vector<std::string> kDownTypes = {"CrossAttnDownBlock3D", "DownBlock3D"};
const std::vector<std::string> kUpTypes = {"CrossAttnUpBlock3D", "UpBlock3D"};

std::vector<bool> parse_block_types(const std::vector<std::string>& types, const std::vector<std::string>& valid, const std::string& key,
                                    const std::string& reference) {
  std::vector<bool> attention;
  for (const auto& type : types) {
    if (type != valid[0] && type != valid[1])
      throw config_error(fmt::format("[backbone] {}: '{}' is not a block type of {} (valid: {}, {})", key, type, reference, valid[0], valid[1]));
    attention.push_back(type == valid[0]);
  }
  return attention;
}

}  // namespace

// One level: ResNets, each followed by its temporal slot and (with attention) a spatial and a temporal
// transformer; diffusers' Cross/Down/UpBlock3D and, with `Mid`, UNetMidBlock3DCrossAttn.
class LevelImpl : public torch::nn::Module {
 public:
  enum class Kind { Down, Mid, Up };
  // resnet_in[i], out: the ResNets' channels; the slot names are "<prefix>temp_convs.<i>".
  LevelImpl(Kind kind, const std::vector<int64_t>& resnet_in, int64_t out, bool attention, bool resample, const UNet3DSettings& s,
            const std::string& prefix, int64_t height, int64_t width, int64_t& slot_index, int64_t& swap_index, const BackboneContext& ctx)
      : kind_(kind), swap_(s.swap_attention) {
    resnets_ = register_module("resnets", torch::nn::ModuleList());
    temp_convs_ = register_module("temp_convs", torch::nn::ModuleList());
    const int64_t temb = 4 * s.channels[0];
    // Every spatial transformer of these UNets projects with Linear layers (use_linear_projection).
    TransformerOptions t{out, out / s.head_dim, s.head_dim, s.cross_dim, s.groups, true, s.kernel};
    if (attention) {
      attentions_ = register_module("attentions", torch::nn::ModuleList());
      temp_attentions_ = register_module("temp_attentions", torch::nn::ModuleList());
    }
    for (size_t i = 0; i < resnet_in.size(); ++i) {
      resnets_->push_back(nn::ResnetBlock(nn::ResnetBlockOptions{resnet_in[i], out, temb, s.groups, s.eps, 0.0}));
      temp_convs_->push_back(ctx.make_temporal(TemporalContext{fmt::format("{}temp_convs.{}", prefix, i), out, s.frames, height, width, slot_index++}));
      // The mid block's transformers sit between its ResNets: one pair fewer than ResNets.
      if (attention && (kind != Kind::Mid || i + 1 < resnet_in.size())) {
        attentions_->push_back(SpatialTransformer(t));
        if (swap_) {
          nn::SwapAttentionOptions o;
          o.channels = out;
          o.frames = s.frames;
          o.height = height;
          o.width = width;
          o.heads = out / s.head_dim;
          o.window = s.swap_window;
          o.spatial_queries = swap_index++ % 2 == 0;  // which stream asks alternates from block to block
          o.attention = s.kernel;
          o.where = fmt::format("{}temp_attentions.{}", prefix, attentions_->size() - 1);
          temp_attentions_->push_back(nn::SwapAttentionBlock(o));
        } else {
          temp_attentions_->push_back(TemporalTransformer(t));
        }
      }
    }
    if (resample) {
      resample_ = Resample(out, kind == Kind::Down);
      register_module(kind == Kind::Down ? "downsamplers" : "upsamplers", torch::nn::ModuleList(resample_));
    }
  }

  // Down: returns the output and appends each ResNet's output (and the downsampled one) to `skips`.
  // Up: pops a skip before each ResNet; `up_size` is the upsample's output size.
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context, int64_t frames, std::vector<torch::Tensor>& skips,
                        std::vector<int64_t> up_size = {}) {
    for (size_t i = 0; i < resnets_->size(); ++i) {
      if (kind_ == Kind::Up) {
        h = torch::cat({h, skips.back()}, 1);
        skips.pop_back();
      }
      h = resnets_[i]->as<nn::ResnetBlockImpl>()->forward(h, temb);
      h = to_frames(temp_convs_[i]->as<TemporalModule>()->forward(to_video(h, frames)));
      if (attentions_ && i < attentions_->size()) {
        h = attentions_[i]->as<SpatialTransformerImpl>()->forward(h, context);
        h = swap_ ? temp_attentions_[i]->as<nn::SwapAttentionBlockImpl>()->forward(h)
                  : temp_attentions_[i]->as<TemporalTransformerImpl>()->forward(h, frames);
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
  bool swap_;
  torch::nn::ModuleList resnets_{nullptr}, temp_convs_{nullptr}, attentions_{nullptr}, temp_attentions_{nullptr};
  Resample resample_{nullptr};
};
TORCH_MODULE(Level);

UNet3DSettings read_unet3d_settings(const Params& p, const BackboneContext& ctx, const std::string& reference) {
  UNet3DSettings s;
  s.channels = p.integers("block_out_channels");
  s.down_attention = parse_block_types(p.strs("down_block_types"), kDownTypes, "down_block_types", reference);
  s.up_attention = parse_block_types(p.strs("up_block_types"), kUpTypes, "up_block_types", reference);
  s.layers = p.integer("layers_per_block");
  s.head_dim = p.integer("attention_head_dim");
  s.groups = p.integer("norm_num_groups");
  s.eps = p.real("norm_eps");
  s.frames = ctx.frames;
  s.kernel.backend = nn::parse_attention_backend(p.str("attention_backend"));
  s.cross_dim = p.integer("cross_attention_dim") > 0 ? p.integer("cross_attention_dim") : ctx.text_dim;
  s.swap_attention = p.str("temp_attentions") == "swap";
  s.swap_window = p.integer("swap_window");

  const size_t levels = s.channels.size();
  if (levels == 0) throw config_error("[backbone] block_out_channels is empty (valid: one channel count per level, e.g. [320, 640, 1280, 1280])");
  if (s.down_attention.size() != levels || s.up_attention.size() != levels)
    throw config_error(fmt::format("[backbone] down_block_types ({}) and up_block_types ({}) need one entry per block_out_channels entry ({})",
                                   s.down_attention.size(), s.up_attention.size(), levels));
  for (int64_t c : s.channels) {
    if (c % s.groups != 0) throw config_error(fmt::format("[backbone] block_out_channels entry {} is not divisible by norm_num_groups = {}", c, s.groups));
    if (c % s.head_dim != 0)
      throw config_error(fmt::format("[backbone] block_out_channels entry {} is not divisible by attention_head_dim = {} (heads are {} channels wide)", c,
                                     s.head_dim, s.head_dim));
  }
  if (ctx.text_dim > 0 && s.cross_dim != ctx.text_dim)
    throw config_error(fmt::format("[backbone] cross_attention_dim = {} but the text encoder gives {} (valid: {}, or 0 to take it)", s.cross_dim,
                                   ctx.text_dim, ctx.text_dim));
  return s;
}

std::vector<ParamSpec> unet3d_param_specs() {
  return {
      int_list_param("block_out_channels", {320, 640, 1280, 1280}, "channels per level (ModelScope and I2VGen-XL: 320, 640, 1280, 1280)").range(1, 65536),
      string_list_param("down_block_types", {"CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"},
                        "per level: CrossAttnDownBlock3D (with transformers) or DownBlock3D")
          .one_of(kDownTypes),
      string_list_param("up_block_types", {"UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"},
                        "per level, deepest first: CrossAttnUpBlock3D or UpBlock3D")
          .one_of(kUpTypes),
      int_param("layers_per_block", 2, "ResNets per down level (up levels have one more)").range(1, 16),
      int_param("attention_head_dim", 64, "channels per attention head (each level has channels / this heads)").range(1, 4096),
      int_param("norm_num_groups", 32, "GroupNorm groups").range(1, 1024),
      float_param("norm_eps", 1e-5, "eps of the ResNets' and the output's GroupNorms").range(0, 1),
      int_param("cross_attention_dim", 0, "text token width the cross-attention expects; 0 = the text encoder's (ModelScope and I2VGen-XL: 1024)")
          .range(0, 65536),
      enum_param("attention_backend", nn::AttentionBackend::Auto, nn::attention_backend_names(), "attention kernel (see asg/nn/attention.h)"),
      string_param("temp_attentions", "transformer",
                   "what follows each spatial transformer: transformer (diffusers' TransformerTemporalModel, ModelScope's) or swap "
                   "(VideoFactory's swapped spatiotemporal attention, asg/nn/swap_attention.h)")
          .one_of({"transformer", "swap"})
          .added_later(),
      int_param("swap_window", 8, "temp_attentions = swap: the spatial side of its frames x window x window windows").range(1, 4096).added_later(),
  };
}

UNet3DBodyImpl::UNet3DBodyImpl(const UNet3DSettings& s, int64_t in_channels, int64_t out_channels, const BackboneContext& ctx) : layers_(s.layers) {
  const size_t levels = s.channels.size();
  const int64_t c0 = s.channels[0], temb = 4 * c0;
  conv_in_ = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, c0, 3).padding(1)));
  time_embedding_ = register_module("time_embedding", std::make_shared<TimestepEmbeddingImpl>(c0, temb));
  transformer_in_ = register_module("transformer_in", std::make_shared<TemporalTransformerImpl>(TransformerOptions{c0, 8, s.head_dim, 0, s.groups, false, s.kernel}));

  int64_t slot = 0, swap = 0, h = ctx.height, w = ctx.width;
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
    down_blocks_->push_back(Level(LevelImpl::Kind::Down, resnet_in, out, s.down_attention[i], !last, s, fmt::format("down_blocks.{}.", i), h, w, slot, swap, ctx));
    if (!last) h = (h + 1) / 2, w = (w + 1) / 2;  // stride 2, padding 1
  }
  mid_block_ = register_module("mid_block", std::make_shared<LevelImpl>(LevelImpl::Kind::Mid, std::vector<int64_t>{out, out}, out, true, false, s,
                                                                        "mid_block.", h, w, slot, swap, ctx));
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
    up_blocks_->push_back(Level(LevelImpl::Kind::Up, resnet_in, channels, s.up_attention[i], !last, s, fmt::format("up_blocks.{}.", i), lh, lw, slot, swap, ctx));
    prev = channels;
  }
  conv_norm_out_ = register_module("conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(s.groups, c0).eps(s.eps)));
  conv_out_ = register_module("conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(c0, out_channels, 3).padding(1)));
  time_dim_ = c0;
}

torch::Tensor UNet3DBodyImpl::embed_timestep(const torch::Tensor& t, torch::ScalarType dtype) {
  return time_embedding_->forward(timestep_features(t, time_dim_).to(dtype));
}

torch::Tensor UNet3DBodyImpl::run(const torch::Tensor& input, const torch::Tensor& emb, const torch::Tensor& context, int64_t f) {
  auto h = conv_in_->forward(input);
  h = transformer_in_->forward(h, f);
  std::vector<torch::Tensor> skips = {h};
  for (const auto& block : *down_blocks_) h = block->as<LevelImpl>()->forward(h, emb, context, f, skips);
  h = mid_block_->forward(h, emb, context, f, skips);
  const auto resnets_per_up_block = static_cast<size_t>(layers_ + 1);
  for (size_t i = 0; i < up_blocks_->size(); ++i) {
    // The upsample goes to the size of the skip the next level pops last (diffusers' forward_upsample_size).
    std::vector<int64_t> size;
    if (i + 1 < up_blocks_->size()) {
      const auto& next_skip = skips[skips.size() - resnets_per_up_block - 1];
      size = {next_skip.size(2), next_skip.size(3)};
    }
    h = up_blocks_[i]->as<LevelImpl>()->forward(h, emb, context, f, skips, size);
  }
  h = conv_out_->forward(torch::silu(conv_norm_out_->forward(h)));
  return to_video(h, f);
}

}  // namespace asg::modelscope
