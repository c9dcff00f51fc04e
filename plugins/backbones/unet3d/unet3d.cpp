// unet3d: a small text-conditioned UNet for video diffusion in pixel space, in the factorised style of
// ModelScope's UNet3DConditionModel: 2D ResNet blocks applied per frame, each followed by the
// experiment's temporal module (temporal conv, STI, none), which mixes information across frames.
// Conditioning: sinusoidal timestep embedding + pooled text embedding (+ frame index), injected into every
// ResNet block as a per-channel scale and shift (FiLM); and per-frame cross-attention from pixels to the
// caption tokens at the coarser levels, which is what lets word order ("from left to right") steer
// where each frame draws the sprite.
//
// layout = "modelscope" is the block of ModelScope's UNet3DConditionModel / VideoLDM, which the VSD2M and
// RDTF code builds on: ResNet2D -> temporal module slot (where ModelScope has its temporal conv and the
// paper puts STI) -> spatial transformer (self-attention over a frame's pixels, cross-attention to the
// caption, GEGLU feed-forward) -> temporal transformer (self-attention over the frames at each pixel,
// feed-forward). Both transformers sit at the attention levels and start as the identity.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "asg/kinds/backbone.h"
#include "asg/nn/attention.h"
#include "asg/nn/positions.h"
#include "asg/nn/scale_shift_silu.h"
#include "asg/nn/swap_attention.h"
#include "asg/plugin.h"

namespace asg::unet {
namespace {

int64_t norm_groups(int64_t groups, int64_t channels) { return std::gcd(groups, channels); }

// x [N, C, H, W] with N = B*T  <->  [B, C, T, H, W]
torch::Tensor to_video(const torch::Tensor& x, int64_t frames) {
  return x.view({-1, frames, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
}
torch::Tensor to_frames(const torch::Tensor& v) {
  return v.permute({0, 2, 1, 3, 4}).reshape({-1, v.size(1), v.size(3), v.size(4)});
}

struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(int64_t in, int64_t out, int64_t emb_dim, int64_t groups, double dropout) {
    norm1 = register_module("norm1", torch::nn::GroupNorm(norm_groups(groups, in), in));
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
    emb_proj = register_module("emb_proj", torch::nn::Linear(emb_dim, 2 * out));
    norm2 = register_module("norm2", torch::nn::GroupNorm(norm_groups(groups, out), out));
    drop = register_module("dropout", torch::nn::Dropout(dropout));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1)));
    torch::nn::init::zeros_(conv2->weight);  // each block starts as its skip path
    torch::nn::init::zeros_(conv2->bias);
    if (in != out) skip = register_module("skip", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
  }
  // x [N, C, H, W]; emb [N, E]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb) {
    auto h = conv1->forward(torch::silu(norm1->forward(x)));
    auto ss = emb_proj->forward(torch::silu(emb)).chunk(2, 1);
    h = asg::nn::scale_shift_silu(norm2->forward(h), ss[0], ss[1]);  // one fused kernel on CUDA
    h = conv2->forward(drop->forward(h));
    return (skip ? skip->forward(x) : x) + h;
  }
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
  torch::nn::Linear emb_proj{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(ResBlock);

// Cross-attention from pixels to caption tokens (the spatial transformer's cross-attention of
// SD/ModelScope, without the self-attention). The pooled caption is appended as one extra token, so the
// empty caption (no tokens) attends to the learned unconditional embedding. Output projection starts at
// zero: the block starts as the identity.
//
// Every frame of a clip attends to the same caption, so the queries of all T frames go into one
// attention call per clip ([B, T*HW] queries against [B, L] keys) instead of T calls against T copies
// of the keys: the same numbers, an eighth of the key/value projections and far fewer tiny matmuls.
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int64_t channels, int64_t text_dim, int64_t heads, int64_t groups) : heads(heads) {
    norm = register_module("norm", torch::nn::GroupNorm(norm_groups(groups, channels), channels));
    to_q = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(channels, channels).bias(false)));
    to_k = register_module("to_k", torch::nn::Linear(torch::nn::LinearOptions(text_dim, channels).bias(false)));
    to_v = register_module("to_v", torch::nn::Linear(torch::nn::LinearOptions(text_dim, channels).bias(false)));
    to_out = register_module("to_out", torch::nn::Linear(channels, channels));
    torch::nn::init::zeros_(to_out->weight);
    torch::nn::init::zeros_(to_out->bias);
  }
  // x [B*T, C, H, W]; tokens [B, L, D]; mask [B, L] (true = attend)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& tokens, const torch::Tensor& mask) {
    const int64_t b = tokens.size(0), c = x.size(1), n = x.size(0) / b * x.size(2) * x.size(3), l = tokens.size(1),
                  dh = c / heads;
    auto h = norm->forward(x).flatten(2).transpose(1, 2).reshape({b, n, c});  // all frames' pixels of a clip
    auto q = to_q->forward(h).view({b, n, heads, dh}).transpose(1, 2);        // [B, h, T*HW, dh]
    auto k = to_k->forward(tokens).view({b, l, heads, dh}).transpose(1, 2);   // [B, h, L, dh]
    auto v = to_v->forward(tokens).view({b, l, heads, dh}).transpose(1, 2);
    auto scores = q.matmul(k.transpose(-1, -2)) / std::sqrt(static_cast<double>(dh));
    scores = scores.masked_fill(mask.logical_not().view({b, 1, 1, l}), asg::nn::masked_score(scores.scalar_type()));
    auto o = scores.softmax(-1).matmul(v).transpose(1, 2).reshape({x.size(0), x.size(2) * x.size(3), c});
    return x + to_out->forward(o).transpose(1, 2).reshape(x.sizes());
  }
  int64_t heads;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
};
TORCH_MODULE(CrossAttention);

// GEGLU feed-forward of SD's BasicTransformerBlock (Shazeer 2020): Linear(C, 2*4C) -> a * gelu(b) -> Linear(4C, C).
struct FeedForwardImpl : torch::nn::Module {
  explicit FeedForwardImpl(int64_t channels, int64_t mult = 4) {
    in = register_module("in", torch::nn::Linear(channels, 2 * mult * channels));
    out = register_module("out", torch::nn::Linear(mult * channels, channels));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto ab = in->forward(x).chunk(2, -1);
    return out->forward(ab[0] * torch::gelu(ab[1]));
  }
  torch::nn::Linear in{nullptr}, out{nullptr};
};
TORCH_MODULE(FeedForward);

// Multi-head self-attention over the rows of x [N, L, C] (every token of a row attends to every other).
struct SelfAttentionImpl : torch::nn::Module {
  SelfAttentionImpl(int64_t channels, int64_t heads) : heads(heads) {
    qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(channels, 3 * channels).bias(false)));
    out = register_module("out", torch::nn::Linear(channels, channels));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t n = x.size(0), l = x.size(1), c = x.size(2);
    auto parts = qkv->forward(x).view({n, l, 3, heads, c / heads}).permute({2, 0, 3, 1, 4});  // [3, N, h, L, d]
    auto o = nn::attention(parts[0], parts[1], parts[2]);
    return out->forward(o.transpose(1, 2).reshape({n, l, c}));
  }
  int64_t heads;
  torch::nn::Linear qkv{nullptr}, out{nullptr};
};
TORCH_MODULE(SelfAttention);

// SD / ModelScope Transformer2DModel on every frame: GroupNorm, proj_in, then per layer pre-LayerNorm
// self-attention over the frame's pixels, cross-attention to the caption tokens (all of a clip's frames in
// one call, as in CrossAttention above) and a GEGLU feed-forward, each residual; proj_out starts at zero.
struct SpatialTransformerImpl : torch::nn::Module {
  SpatialTransformerImpl(int64_t channels, int64_t text_dim, int64_t heads, int64_t groups, int64_t depth)
      : heads(heads) {
    norm = register_module("norm", torch::nn::GroupNorm(norm_groups(groups, channels), channels));
    proj_in = register_module("proj_in", torch::nn::Linear(channels, channels));
    for (int64_t i = 0; i < depth; ++i) {
      auto ln = [&](const char* what) {
        return register_module(fmt::format("layer{}_{}", i, what), torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels})));
      };
      norms1.push_back(ln("norm1"));
      norms2.push_back(ln("norm2"));
      norms3.push_back(ln("norm3"));
      self.push_back(register_module(fmt::format("layer{}_self", i), SelfAttention(channels, heads)));
      to_q.push_back(register_module(fmt::format("layer{}_cross_q", i),
                                     torch::nn::Linear(torch::nn::LinearOptions(channels, channels).bias(false))));
      to_kv.push_back(register_module(fmt::format("layer{}_cross_kv", i),
                                      torch::nn::Linear(torch::nn::LinearOptions(text_dim, 2 * channels).bias(false))));
      cross_out.push_back(register_module(fmt::format("layer{}_cross_out", i), torch::nn::Linear(channels, channels)));
      ff.push_back(register_module(fmt::format("layer{}_ff", i), FeedForward(channels)));
    }
    proj_out = register_module("proj_out", torch::nn::Linear(channels, channels));
    torch::nn::init::zeros_(proj_out->weight);
    torch::nn::init::zeros_(proj_out->bias);
  }
  // x [B*T, C, H, W]; tokens [B, L, D]; mask [B, L]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& tokens, const torch::Tensor& mask) {
    const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3), b = tokens.size(0), l = tokens.size(1),
                  dh = c / heads, per_clip = n / b * hw;
    auto h = proj_in->forward(norm->forward(x).flatten(2).transpose(1, 2));  // [B*T, HW, C]
    const auto key_mask = mask.logical_not().view({b, 1, 1, l});
    for (size_t i = 0; i < self.size(); ++i) {
      h = h + self[i]->forward(norms1[i]->forward(h));
      auto q = to_q[i]->forward(norms2[i]->forward(h)).reshape({b, per_clip, heads, dh}).transpose(1, 2);
      auto kv = to_kv[i]->forward(tokens).view({b, l, 2, heads, dh}).permute({2, 0, 3, 1, 4});
      auto scores = q.matmul(kv[0].transpose(-1, -2)) / std::sqrt(static_cast<double>(dh));
      auto o = scores.masked_fill(key_mask, asg::nn::masked_score(scores.scalar_type()))
                   .softmax(-1)
                   .matmul(kv[1])
                   .transpose(1, 2)
                   .reshape({n, hw, c});
      h = h + cross_out[i]->forward(o);
      h = h + ff[i]->forward(norms3[i]->forward(h));
    }
    return x + proj_out->forward(h).transpose(1, 2).reshape(x.sizes());
  }
  int64_t heads;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear proj_in{nullptr}, proj_out{nullptr};
  std::vector<torch::nn::LayerNorm> norms1, norms2, norms3;
  std::vector<SelfAttention> self;
  std::vector<torch::nn::Linear> to_q, to_kv, cross_out;
  std::vector<FeedForward> ff;
};
TORCH_MODULE(SpatialTransformer);

// ModelScope's TransformerTemporalModel: at every pixel, the T frames form one sequence; GroupNorm,
// proj_in, sinusoidal frame positions, then per layer pre-LayerNorm self-attention over the frames and a
// GEGLU feed-forward; proj_out starts at zero.
struct TemporalTransformerImpl : torch::nn::Module {
  TemporalTransformerImpl(int64_t channels, int64_t frames, int64_t heads, int64_t groups, int64_t depth) {
    norm = register_module("norm", torch::nn::GroupNorm(norm_groups(groups, channels), channels));
    proj_in = register_module("proj_in", torch::nn::Linear(channels, channels));
    positions = register_buffer("positions", nn::sinusoidal_positions(frames, channels));
    for (int64_t i = 0; i < depth; ++i) {
      norms1.push_back(register_module(fmt::format("layer{}_norm1", i), torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels}))));
      norms2.push_back(register_module(fmt::format("layer{}_norm2", i), torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels}))));
      self.push_back(register_module(fmt::format("layer{}_self", i), SelfAttention(channels, heads)));
      ff.push_back(register_module(fmt::format("layer{}_ff", i), FeedForward(channels)));
    }
    proj_out = register_module("proj_out", torch::nn::Linear(channels, channels));
    torch::nn::init::zeros_(proj_out->weight);
    torch::nn::init::zeros_(proj_out->bias);
  }
  // x [B*T, C, H, W] -> the same
  torch::Tensor forward(const torch::Tensor& x, int64_t frames) {
    const int64_t c = x.size(1), hh = x.size(2), ww = x.size(3), b = x.size(0) / frames;
    auto seq = norm->forward(x).view({b, frames, c, hh * ww}).permute({0, 3, 1, 2}).reshape({b * hh * ww, frames, c});
    auto h = proj_in->forward(seq) + positions;
    for (size_t i = 0; i < self.size(); ++i) {
      h = h + self[i]->forward(norms1[i]->forward(h));
      h = h + ff[i]->forward(norms2[i]->forward(h));
    }
    auto out = proj_out->forward(h).view({b, hh * ww, frames, c}).permute({0, 2, 3, 1}).reshape(x.sizes());
    return x + out;
  }
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear proj_in{nullptr}, proj_out{nullptr};
  torch::Tensor positions;
  std::vector<torch::nn::LayerNorm> norms1, norms2;
  std::vector<SelfAttention> self;
  std::vector<FeedForward> ff;
};
TORCH_MODULE(TemporalTransformer);

// Caption tokens for cross-attention, one set per clip: the tokens plus the pooled embedding.
struct ClipTokens {
  torch::Tensor tokens;  // [B, L+1, D]
  torch::Tensor mask;    // [B, L+1]
};

// One block of a level.
// compact:    ResNet -> optional cross-attention to the caption -> temporal module.
// modelscope: ResNet -> temporal module -> optional spatial transformer -> optional temporal transformer
//             (ModelScope's attention over frames, or VideoFactory's swap attention).
struct StageBlockImpl : torch::nn::Module {
  StageBlockImpl(ResBlock r, CrossAttention a, std::shared_ptr<TemporalModule> t, SpatialTransformer s,
                 TemporalTransformer tt, nn::SwapAttentionBlock swap) {
    res = register_module("res", r);
    if (a) attention = register_module("attention", a);
    temporal = register_module("temporal", std::move(t));
    if (s) spatial_transformer = register_module("spatial_transformer", s);
    if (tt) temporal_transformer = register_module("temporal_transformer", tt);
    if (swap) swap_transformer = register_module("swap_transformer", swap);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb, const ClipTokens& text, int64_t frames) {
    auto h = res->forward(x, emb);
    if (attention) h = attention->forward(h, text.tokens, text.mask);
    h = to_frames(temporal->forward(to_video(h, frames)));
    if (spatial_transformer) h = spatial_transformer->forward(h, text.tokens, text.mask);
    if (temporal_transformer) h = temporal_transformer->forward(h, frames);
    if (swap_transformer) h = swap_transformer->forward(h);
    return h;
  }
  ResBlock res{nullptr};
  CrossAttention attention{nullptr};
  std::shared_ptr<TemporalModule> temporal;
  SpatialTransformer spatial_transformer{nullptr};
  TemporalTransformer temporal_transformer{nullptr};
  nn::SwapAttentionBlock swap_transformer{nullptr};  // VideoFactory's, where ModelScope has its temporal transformer
};
TORCH_MODULE(StageBlock);

class Unet3dImpl final : public Backbone {
 public:
  Unet3dImpl(const Params& p, const BackboneContext& ctx)
      : frames_(ctx.frames), frame_embedding_(p.boolean("frame_embedding")), coord_channels_(p.boolean("coord_channels")) {
    const auto& channels = p.integers("channels");
    const int64_t layers = p.integer("layers_per_level");
    const int64_t groups = p.integer("groups");
    const double dropout = p.real("dropout");
    base_ = channels.front();
    const int64_t emb_dim = p.integer("emb_dim") > 0 ? p.integer("emb_dim") : 4 * base_;
    int64_t downscale = int64_t(1) << (channels.size() - 1);
    if (ctx.height % downscale != 0 || ctx.width % downscale != 0)
      throw config_error(fmt::format("{} levels needs height and width divisible by {}, data are {}x{} "
                                     "(use fewer channels entries or another [dataset] size)",
                                     channels.size(), downscale, ctx.height, ctx.width));

    time_mlp_ = register_module("time_mlp", torch::nn::Sequential(torch::nn::Linear(base_, emb_dim), torch::nn::SiLU(),
                                                                  torch::nn::Linear(emb_dim, emb_dim)));
    text_proj_ = register_module("text_proj", torch::nn::Linear(ctx.text_dim, emb_dim));
    if (frame_embedding_) frame_proj_ = register_module("frame_proj", torch::nn::Linear(base_, emb_dim));
    const int64_t in_channels = ctx.channels + ctx.condition_channels + (coord_channels_ ? 2 : 0);
    conv_in_ = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, base_, 3).padding(1)));

    const int64_t attention_from = p.integer("attention_from_level");
    const int64_t heads = p.integer("attention_heads");
    for (int64_t c : channels)
      if (c % heads != 0)
        throw config_error(fmt::format("attention_heads = {} must divide every channels entry ({})", heads, c));
    const bool modelscope = p.str("layout") == "modelscope";
    const int64_t depth = p.integer("transformer_depth");
    const std::string& temporal_transformer = p.str("temporal_transformer");
    size_t current_level = 0;
    int64_t next_temporal_index = 0, next_swap_index = 0;
    auto stage = [&](const std::string& name, int64_t in, int64_t out, int64_t h, int64_t w) {
      const bool attends = attention_from >= 0 && static_cast<int64_t>(current_level) >= attention_from;
      CrossAttention attention{nullptr};
      SpatialTransformer spatial{nullptr};
      TemporalTransformer temporal{nullptr};
      nn::SwapAttentionBlock swap{nullptr};
      if (attends && !modelscope) attention = CrossAttention(out, ctx.text_dim, heads, groups);
      if (attends && modelscope) spatial = SpatialTransformer(out, ctx.text_dim, heads, groups, depth);
      if (attends && modelscope && temporal_transformer == "attention")
        temporal = TemporalTransformer(out, ctx.frames, heads, groups, depth);
      if (attends && modelscope && temporal_transformer == "swap") {
        nn::SwapAttentionOptions o;
        o.channels = out;
        o.frames = ctx.frames;
        o.height = h;
        o.width = w;
        o.heads = heads;
        o.window = p.integer("swap_window");
        o.spatial_queries = next_swap_index++ % 2 == 0;
        swap = nn::SwapAttentionBlock(o);
      }
      auto t = ctx.make_temporal(TemporalContext{name, out, ctx.frames, h, w, next_temporal_index++});
      return StageBlock(ResBlock(in, out, emb_dim, groups, dropout), attention, std::move(t), spatial, temporal, swap);
    };
    int64_t h = ctx.height, w = ctx.width, ch = base_;
    std::vector<int64_t> skip_channels;
    for (size_t level = 0; level < channels.size(); ++level) {
      current_level = level;
      for (int64_t i = 0; i < layers; ++i) {
        const std::string name = fmt::format("down{}_{}", level, i);
        down_.push_back(register_module(name, stage(name, ch, channels[level], h, w)));
        ch = channels[level];
        skip_channels.push_back(ch);
      }
      if (level + 1 < channels.size()) {
        downsample_.push_back(register_module(fmt::format("downsample{}", level),
                                              torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, ch, 3).stride(2).padding(1))));
        h /= 2;
        w /= 2;
      }
    }
    current_level = channels.size() - 1;
    mid_ = register_module("mid", stage("mid", ch, ch, h, w));
    for (size_t level = channels.size(); level-- > 0;) {
      current_level = level;
      for (int64_t i = 0; i < layers; ++i) {
        int64_t skip = skip_channels.back();
        skip_channels.pop_back();
        const std::string name = fmt::format("up{}_{}", level, i);
        up_.push_back(register_module(name, stage(name, ch + skip, channels[level], h, w)));
        ch = channels[level];
      }
      if (level > 0) {
        // Nearest upsampling without a conv of its own: the next ResNet block's convs (which also see the
        // skip connection) do the smoothing, at a quarter of the cost of a full-resolution conv here.
        ++upsamples_;
        h *= 2;
        w *= 2;
      }
    }
    out_norm_ = register_module("out_norm", torch::nn::GroupNorm(norm_groups(groups, ch), ch));
    conv_out_ = register_module("conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, ctx.channels, 3).padding(1)));
    torch::nn::init::zeros_(conv_out_->weight);
    torch::nn::init::zeros_(conv_out_->bias);
    layers_ = layers;
  }

  // Transformer/DDPM sinusoidal features of a [N] float tensor -> [N, base_].
  torch::Tensor sinusoidal(const torch::Tensor& values) const {
    const int64_t half = base_ / 2;
    auto freqs = torch::exp(-std::log(10000.0) * torch::arange(half, values.options()) / half);
    auto args = values.unsqueeze(1) * freqs.unsqueeze(0);
    auto out = torch::cat({torch::sin(args), torch::cos(args)}, 1);
    if (out.size(1) < base_) out = torch::nn::functional::pad(out, torch::nn::functional::PadFuncOptions({0, 1}));
    return out;
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const TextEmbedding& text) override {
    // Timestep features through the MLP, plus the pooled caption.
    auto emb = time_mlp_->forward(sinusoidal(t.to(x.dtype()))) + text_proj_->forward(text.pooled);
    emb = emb.repeat_interleave(frames_, 0);  // one row per frame: [B*T, E]
    if (frame_embedding_) {
      // Which frame each row is: per-frame 2D convs are otherwise blind to time order, and must infer it
      // from the temporal modules' boundary effects before they can place a moving sprite.
      auto index = torch::arange(frames_, x.options()).repeat({x.size(0)});
      emb = emb + frame_proj_->forward(sinusoidal(index));
    }


    ClipTokens text_tokens{torch::cat({text.tokens, text.pooled.unsqueeze(1)}, 1),
                           torch::cat({text.mask, torch::ones({text.mask.size(0), 1}, text.mask.options())}, 1)};
    auto frames = to_frames(x);
    if (coord_channels_) {
      // CoordConv (Liu et al. 2018): x and y in [-1, 1] as two extra input channels. Convolutions are
      // translation-equivariant; "start at the left edge" needs to know where the left edge is.
      const int64_t n = frames.size(0), hh = frames.size(2), ww = frames.size(3);
      auto ys = torch::linspace(-1, 1, hh, frames.options()).view({1, 1, hh, 1}).expand({n, 1, hh, ww});
      auto xs = torch::linspace(-1, 1, ww, frames.options()).view({1, 1, 1, ww}).expand({n, 1, hh, ww});
      frames = torch::cat({frames, xs, ys}, 1);
    }
    auto h = conv_in_->forward(frames);
    std::vector<torch::Tensor> skips;
    size_t d = 0;
    for (size_t level = 0; level <= downsample_.size(); ++level) {
      for (int64_t i = 0; i < layers_; ++i) {
        h = down_[d++]->forward(h, emb, text_tokens, frames_);
        skips.push_back(h);
      }
      if (level < downsample_.size()) h = downsample_[level]->forward(h);
    }
    h = mid_->forward(h, emb, text_tokens, frames_);
    size_t u = 0;
    for (int64_t level = 0; level <= upsamples_; ++level) {
      for (int64_t i = 0; i < layers_; ++i) {
        h = up_[u++]->forward(torch::cat({h, skips.back()}, 1), emb, text_tokens, frames_);
        skips.pop_back();
      }
      if (level < upsamples_) {
        h = torch::nn::functional::interpolate(
            h, torch::nn::functional::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
      }
    }
    h = conv_out_->forward(torch::silu(out_norm_->forward(h)));
    return to_video(h, frames_).contiguous().view({x.size(0), h.size(1), frames_, x.size(3), x.size(4)});
  }

 private:
  int64_t frames_;
  bool frame_embedding_, coord_channels_;
  int64_t base_ = 32, layers_ = 1;
  torch::nn::Sequential time_mlp_{nullptr};
  torch::nn::Linear text_proj_{nullptr}, frame_proj_{nullptr};
  torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  std::vector<StageBlock> down_, up_;
  StageBlock mid_{nullptr};
  std::vector<torch::nn::Conv2d> downsample_;
  int64_t upsamples_ = 0;
  torch::nn::GroupNorm out_norm_{nullptr};
};

}  // namespace
}  // namespace asg::unet

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Backbone>(
    "unet3d", "1.2.0", "text-conditioned factorised 3D UNet (2D ResNet per frame + temporal module slot; ModelScope/VideoLDM layout)",
    std::vector<asg::ParamSpec>{
        asg::int_list_param("channels", {32, 64}, "channels per resolution level (each further level halves H and W)")
            .range(4, 4096)
            .length(1, 6),
        asg::int_param("layers_per_level", 1, "ResNet+temporal blocks per level").range(1, 8),
        asg::int_param("groups", 8, "GroupNorm groups (reduced to gcd with the channel count)").range(1, 256),
        asg::int_param("emb_dim", 0, "timestep/text embedding width; 0 = 4 x channels[0]").range(0, 16384),
        asg::float_param("dropout", 0.0, "dropout inside ResNet blocks").range(0, 1),
        asg::bool_param("frame_embedding", true, "add a sinusoidal frame-index embedding to every frame's conditioning"),
        asg::bool_param("coord_channels", true, "append x/y coordinate channels to the input (CoordConv)"),
        asg::int_param("attention_from_level", 1, "cross-attention to caption tokens in levels >= this (and mid); -1 = none")
            .range(-1, 16),
        asg::int_param("attention_heads", 4, "attention heads (must divide every channels entry)").range(1, 64),
        asg::string_param("layout", "compact", "compact: ResNet -> cross-attention -> temporal module; modelscope: ResNet -> "
                                               "temporal module -> spatial transformer (self + cross-attention + FF) -> "
                                               "temporal transformer, at the attention levels")
            .one_of({"compact", "modelscope"})
            .added_later(),
        asg::int_param("transformer_depth", 1, "modelscope layout: layers in each spatial and temporal transformer")
            .range(1, 16)
            .added_later(),
        asg::string_param("temporal_transformer", "attention", "modelscope layout, after each spatial transformer: attention "
                                                                "(ModelScope's temporal transformer), swap (VideoFactory's swapped "
                                                                "spatiotemporal attention) or none")
            .one_of({"attention", "swap", "none"})
            .added_later(),
        asg::int_param("swap_window", 4, "temporal_transformer = swap: the spatial side of its T x window x window windows")
            .range(1, 1024)
            .added_later(),
    },
    [](const asg::Params& p, const asg::BackboneContext& ctx) { return std::make_shared<asg::unet::Unet3dImpl>(p, ctx); }))
