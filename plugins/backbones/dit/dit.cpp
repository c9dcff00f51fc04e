// dit: a video diffusion transformer, the transformer-based baseline. Latte's layout (Ma et al. 2024,
// "Latte: Latent Diffusion Transformer for Video Generation", its variant 1: spatial and temporal blocks
// interleaved) on DiT's blocks (Peebles & Xie 2023: patchify, adaLN-Zero conditioning):
//
//   tokens = PatchEmbed(frame, patch) + 2D sin-cos positions               [B, T, N, D], N = (H/p)(W/p)
//   c = MLP(sinusoidal(t)) + Linear(pooled caption)                         the adaLN condition, [B, D]
//   depth x {
//     spatial block:  x += g1 * SelfAttn_N(mod(LN x))  ;  x += CrossAttn(LN x, caption)  ;  x += g2 * MLP(mod(LN x))
//     temporal mixing: the experiment's temporal module on [B, D, T, H/p, W/p] (every backbone's slot), and,
//                      with latte_temporal_blocks, a temporal block like the spatial one attending over T
//                      (+ 1D sin-cos frame positions before the first)
//   }
//   out = Linear(mod(LN x)) -> unpatchify                                   [B, C, T, H, W]
// mod(h) = h * (1 + scale(c)) + shift(c); shift/scale/gates come from Linear(c), zero-initialised with the
// output layer (adaLN-Zero): every block starts as the identity and the network's output as zero.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/kinds/backbone.h"
#include "asg/nn/attention.h"
#include "asg/plugin.h"

namespace asg::dit {
namespace {

// Sin-cos features of positions [N] -> [N, dim] (half sin, half cos).
torch::Tensor sincos(const torch::Tensor& positions, int64_t dim) {
  const int64_t half = dim / 2;
  auto freqs = torch::exp(-std::log(10000.0) * torch::arange(half, positions.options()) / half);
  auto args = positions.unsqueeze(1) * freqs.unsqueeze(0);
  auto out = torch::cat({torch::sin(args), torch::cos(args)}, 1);
  if (out.size(1) < dim) out = torch::nn::functional::pad(out, torch::nn::functional::PadFuncOptions({0, dim - out.size(1)}));
  return out;
}

// DiT's fixed 2D positions: half the width encodes the row, half the column. [rows*cols, dim]
torch::Tensor positions_2d(int64_t rows, int64_t cols, int64_t dim) {
  auto r = torch::arange(rows, torch::kFloat).repeat_interleave(cols);
  auto c = torch::arange(cols, torch::kFloat).repeat({rows});
  return torch::cat({sincos(r, dim / 2), sincos(c, dim - dim / 2)}, 1);
}

torch::Tensor modulate(const torch::Tensor& h, const torch::Tensor& shift, const torch::Tensor& scale) {
  return h * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);
}

// One transformer block over sequences [S, L, D] whose condition rows are c [S, D]: adaLN-Zero
// self-attention, optional cross-attention to the caption, adaLN-Zero MLP.
struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t dim, int64_t heads, int64_t mlp_ratio, int64_t text_dim, bool cross, nn::AttentionOptions options)
      : heads(heads), options(options) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).elementwise_affine(false).eps(1e-6)));
    qkv = register_module("qkv", torch::nn::Linear(dim, 3 * dim));
    attn_out = register_module("attn_out", torch::nn::Linear(dim, dim));
    if (cross) {
      norm_cross = register_module("norm_cross", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
      to_q = register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)));
      to_kv = register_module("to_kv", torch::nn::Linear(torch::nn::LinearOptions(text_dim, 2 * dim).bias(false)));
      cross_out = register_module("cross_out", torch::nn::Linear(dim, dim));
      torch::nn::init::zeros_(cross_out->weight);  // the caption enters from zero too
      torch::nn::init::zeros_(cross_out->bias);
    }
    norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).elementwise_affine(false).eps(1e-6)));
    mlp = register_module("mlp", torch::nn::Sequential(torch::nn::Linear(dim, mlp_ratio * dim), torch::nn::GELU(),
                                                       torch::nn::Linear(mlp_ratio * dim, dim)));
    ada = register_module("adaLN", torch::nn::Linear(dim, 6 * dim));
    torch::nn::init::zeros_(ada->weight);
    torch::nn::init::zeros_(ada->bias);
  }
  // x [S, L, D]; c [S, D]; caption tokens [S, K, Dt] and mask [S, K] (only with cross-attention)
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& c, const torch::Tensor& tokens, const torch::Tensor& mask) {
    const int64_t s = x.size(0), l = x.size(1), d = x.size(2), dh = d / heads;
    auto m = ada->forward(torch::silu(c)).chunk(6, 1);  // shift, scale, gate (attention); shift, scale, gate (MLP)
    auto parts = qkv->forward(modulate(norm1->forward(x), m[0], m[1])).view({s, l, 3, heads, dh}).permute({2, 0, 3, 1, 4});
    auto o = nn::attention(parts[0], parts[1], parts[2], options).transpose(1, 2).reshape({s, l, d});
    x = x + m[2].unsqueeze(1) * attn_out->forward(o);
    if (to_q) {
      const int64_t k = tokens.size(1);
      auto q = to_q->forward(norm_cross->forward(x)).view({s, l, heads, dh}).transpose(1, 2);
      auto kv = to_kv->forward(tokens).view({s, k, 2, heads, dh}).permute({2, 0, 3, 1, 4});
      auto scores = q.matmul(kv[0].transpose(-1, -2)) / std::sqrt(static_cast<double>(dh));
      scores = scores.masked_fill(mask.logical_not().view({s, 1, 1, k}), asg::nn::masked_score(scores.scalar_type()));
      x = x + cross_out->forward(scores.softmax(-1).matmul(kv[1]).transpose(1, 2).reshape({s, l, d}));
    }
    return x + m[5].unsqueeze(1) * mlp->forward(modulate(norm2->forward(x), m[3], m[4]));
  }
  int64_t heads;
  nn::AttentionOptions options;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm_cross{nullptr};
  torch::nn::Linear qkv{nullptr}, attn_out{nullptr}, to_q{nullptr}, to_kv{nullptr}, cross_out{nullptr}, ada{nullptr};
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(Block);

class DitImpl final : public Backbone {
 public:
  DitImpl(const Params& p, const BackboneContext& ctx)
      : channels_(ctx.channels), in_channels_(ctx.channels + ctx.condition_channels), frames_(ctx.frames), patch_(p.integer("patch")), dim_(p.integer("width")) {
    const int64_t heads = p.integer("heads"), depth = p.integer("depth"), mlp_ratio = p.integer("mlp_ratio");
    if (ctx.height % patch_ != 0 || ctx.width % patch_ != 0)
      throw config_error(fmt::format("patch = {} must divide the clip's height and width, which are {}x{} (valid: a common "
                                     "divisor, e.g. {})",
                                     patch_, ctx.height, ctx.width, std::gcd(ctx.height, ctx.width)));
    if (dim_ % heads != 0)
      throw config_error(fmt::format("heads = {} must divide width = {} (valid: a divisor of width)", heads, dim_));
    rows_ = ctx.height / patch_;
    cols_ = ctx.width / patch_;
    nn::AttentionOptions options;
    options.backend = nn::parse_attention_backend(p.str("attention_backend"));
    patch_embed_ = register_module("patch_embed", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels_, dim_, patch_).stride(patch_)));
    spatial_positions_ = register_buffer("spatial_positions", positions_2d(rows_, cols_, dim_));
    frame_positions_ = register_buffer("frame_positions", sincos(torch::arange(frames_, torch::kFloat), dim_));
    time_mlp_ = register_module("time_mlp", torch::nn::Sequential(torch::nn::Linear(256, dim_), torch::nn::SiLU(),
                                                                  torch::nn::Linear(dim_, dim_)));
    text_proj_ = register_module("text_proj", torch::nn::Linear(ctx.text_dim, dim_));
    const bool cross = p.boolean("cross_attention");
    const bool latte_blocks = p.boolean("latte_temporal_blocks");
    for (int64_t i = 0; i < depth; ++i) {
      spatial_.push_back(register_module(fmt::format("spatial{}", i), Block(dim_, heads, mlp_ratio, ctx.text_dim, cross, options)));
      if (latte_blocks)
        temporal_blocks_.push_back(register_module(fmt::format("temporal{}", i), Block(dim_, heads, mlp_ratio, ctx.text_dim, false, options)));
      const std::string name = fmt::format("block{}", i);
      temporal_modules_.push_back(
          register_module("temporal_module" + std::to_string(i),
                          ctx.make_temporal(TemporalContext{name, dim_, frames_, rows_, cols_, i})));
    }
    final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim_}).elementwise_affine(false).eps(1e-6)));
    final_ada_ = register_module("final_adaLN", torch::nn::Linear(dim_, 2 * dim_));
    final_linear_ = register_module("final_linear", torch::nn::Linear(dim_, patch_ * patch_ * channels_));
    for (auto* layer : {&final_ada_, &final_linear_}) {
      torch::nn::init::zeros_((*layer)->weight);
      torch::nn::init::zeros_((*layer)->bias);
    }
  }

  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const TextEmbedding& text) override {
    const int64_t b = x.size(0), n = rows_ * cols_, tf = frames_;
    // Condition: timestep features through the MLP, plus the pooled caption.
    auto c = time_mlp_->forward(sincos(t.to(x.dtype()), 256)) + text_proj_->forward(text.pooled);  // [B, D]
    // Caption tokens plus the pooled caption as one more token (so the empty caption attends to something).
    auto tokens = torch::cat({text.tokens, text.pooled.unsqueeze(1)}, 1);
    auto mask = torch::cat({text.mask, torch::ones({b, 1}, text.mask.options())}, 1);
    // Patchify every frame: [B*T, D, H/p, W/p] -> [B, T, N, D].
    auto frames = x.permute({0, 2, 1, 3, 4}).reshape({b * tf, in_channels_, x.size(3), x.size(4)});
    auto h = patch_embed_->forward(frames).flatten(2).transpose(1, 2).view({b, tf, n, dim_}) + spatial_positions_;
    // Spatial sequences are (b, frame) rows; temporal sequences are (b, patch) rows.
    auto spatial_rows = [&](const torch::Tensor& v) { return v.reshape({b * tf, n, dim_}); };
    auto c_spatial = c.repeat_interleave(tf, 0), c_temporal = c.repeat_interleave(n, 0);
    auto tokens_spatial = tokens.repeat_interleave(tf, 0), mask_spatial = mask.repeat_interleave(tf, 0);
    for (size_t i = 0; i < spatial_.size(); ++i) {
      h = spatial_[i]->forward(spatial_rows(h), c_spatial, tokens_spatial, mask_spatial).view({b, tf, n, dim_});
      if (!temporal_blocks_.empty()) {
        auto seq = h.permute({0, 2, 1, 3}).reshape({b * n, tf, dim_});
        if (i == 0) seq = seq + frame_positions_.unsqueeze(0);  // Latte adds the frame positions once
        h = temporal_blocks_[i]->forward(seq, c_temporal, {}, {}).view({b, n, tf, dim_}).permute({0, 2, 1, 3});
      }
      // The experiment's temporal module on the token grid as a clip: [B, D, T, H/p, W/p].
      auto grid = h.view({b, tf, rows_, cols_, dim_}).permute({0, 4, 1, 2, 3});
      h = temporal_modules_[i]->forward(grid.contiguous()).permute({0, 2, 3, 4, 1}).reshape({b, tf, n, dim_});
    }
    auto m = final_ada_->forward(torch::silu(c_spatial)).chunk(2, 1);
    auto out = final_linear_->forward(modulate(final_norm_->forward(spatial_rows(h)), m[0], m[1]));  // [B*T, N, p*p*C]
    // Unpatchify: [B, T, rows, cols, p, p, C] -> [B, C, T, H, W].
    return out.view({b, tf, rows_, cols_, patch_, patch_, channels_})
        .permute({0, 6, 1, 2, 4, 3, 5})
        .reshape({b, channels_, tf, rows_ * patch_, cols_ * patch_});
  }

 private:
  int64_t channels_, in_channels_, frames_, patch_, dim_, rows_ = 0, cols_ = 0;
  torch::nn::Conv2d patch_embed_{nullptr};
  torch::Tensor spatial_positions_, frame_positions_;
  torch::nn::Sequential time_mlp_{nullptr};
  torch::nn::Linear text_proj_{nullptr}, final_ada_{nullptr}, final_linear_{nullptr};
  torch::nn::LayerNorm final_norm_{nullptr};
  std::vector<Block> spatial_, temporal_blocks_;
  std::vector<std::shared_ptr<TemporalModule>> temporal_modules_;
};

}  // namespace
}  // namespace asg::dit

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Backbone>(
    "dit", "1.0.0", "video diffusion transformer (Latte-style spatial/temporal blocks, DiT adaLN-Zero, text cross-attention)",
    std::vector<asg::ParamSpec>{
        asg::int_param("patch", 2, "patch side: tokens are patch x patch pixels (or latents) of one frame").range(1, 64),
        asg::int_param("width", 128, "token width D").range(8, 8192),
        asg::int_param("depth", 4, "blocks: each a spatial transformer block, then temporal mixing").range(1, 128),
        asg::int_param("heads", 4, "attention heads; must divide width").range(1, 128),
        asg::int_param("mlp_ratio", 4, "MLP hidden width = width x this").range(1, 16),
        asg::bool_param("cross_attention", true, "spatial blocks cross-attend to the caption tokens (the pooled caption always "
                                                 "conditions adaLN)"),
        asg::bool_param("latte_temporal_blocks", false, "add Latte's own temporal transformer block after each spatial one "
                                                        "(Latte: true with [temporal] plugin = \"none\")"),
        asg::enum_param("attention_backend", asg::nn::AttentionBackend::Auto, asg::nn::attention_backend_names(),
                        "self-attention kernel (see asg/nn/attention.h)"),
    },
    [](const asg::Params& p, const asg::BackboneContext& ctx) { return std::make_shared<asg::dit::DitImpl>(p, ctx); }))
