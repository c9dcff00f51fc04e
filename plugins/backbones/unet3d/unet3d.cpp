// unet3d: a small text-conditioned UNet for video diffusion in pixel space, in the factorised style of
// ModelScope's UNet3DConditionModel: 2D ResNet blocks applied per frame, each followed by the
// experiment's temporal module (temporal conv, STI, none), which mixes information across frames.
// Conditioning: sinusoidal timestep embedding + pooled text embedding, injected into every ResNet block
// as a per-channel scale and shift (FiLM).
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <numeric>

#include "asg/kinds/backbone.h"
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
    auto ss = emb_proj->forward(torch::silu(emb)).unsqueeze(-1).unsqueeze(-1).chunk(2, 1);
    h = norm2->forward(h) * (1 + ss[0]) + ss[1];
    h = conv2->forward(drop->forward(torch::silu(h)));
    return (skip ? skip->forward(x) : x) + h;
  }
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
  torch::nn::Linear emb_proj{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(ResBlock);

// A ResNet block followed by the temporal module at that point.
struct StageBlockImpl : torch::nn::Module {
  StageBlockImpl(ResBlock r, std::shared_ptr<TemporalModule> t) {
    res = register_module("res", r);
    temporal = register_module("temporal", std::move(t));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb, int64_t frames) {
    auto h = res->forward(x, emb);
    return to_frames(temporal->forward(to_video(h, frames)));
  }
  ResBlock res{nullptr};
  std::shared_ptr<TemporalModule> temporal;
};
TORCH_MODULE(StageBlock);

class Unet3dImpl final : public Backbone {
 public:
  Unet3dImpl(const Params& p, const BackboneContext& ctx) : frames_(ctx.frames), frame_embedding_(p.boolean("frame_embedding")) {
    const auto& channels = p.integers("channels");
    const int64_t layers = p.integer("layers_per_level");
    const int64_t groups = p.integer("groups");
    const double dropout = p.real("dropout");
    base_ = channels.front();
    const int64_t emb_dim = p.integer("emb_dim") > 0 ? p.integer("emb_dim") : 4 * base_;
    int64_t downscale = int64_t(1) << (channels.size() - 1);
    if (ctx.height % downscale != 0 || ctx.width % downscale != 0)
      throw config_error(fmt::format("[backbone] unet3d with {} levels needs height and width divisible by {}, data are {}x{} "
                                     "(use fewer channels entries or another [dataset] size)",
                                     channels.size(), downscale, ctx.height, ctx.width));

    time_mlp_ = register_module("time_mlp", torch::nn::Sequential(torch::nn::Linear(base_, emb_dim), torch::nn::SiLU(),
                                                                  torch::nn::Linear(emb_dim, emb_dim)));
    text_proj_ = register_module("text_proj", torch::nn::Linear(ctx.text_dim, emb_dim));
    if (frame_embedding_) frame_proj_ = register_module("frame_proj", torch::nn::Linear(base_, emb_dim));
    conv_in_ = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(ctx.channels, base_, 3).padding(1)));

    auto stage = [&](int64_t in, int64_t out, int64_t h, int64_t w) {
      auto t = ctx.make_temporal(TemporalContext{out, ctx.frames, h, w});
      return StageBlock(ResBlock(in, out, emb_dim, groups, dropout), std::move(t));
    };
    int64_t h = ctx.height, w = ctx.width, ch = base_;
    std::vector<int64_t> skip_channels;
    for (size_t level = 0; level < channels.size(); ++level) {
      for (int64_t i = 0; i < layers; ++i) {
        down_.push_back(register_module(fmt::format("down{}_{}", level, i), stage(ch, channels[level], h, w)));
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
    mid_ = register_module("mid", stage(ch, ch, h, w));
    for (size_t level = channels.size(); level-- > 0;) {
      for (int64_t i = 0; i < layers; ++i) {
        int64_t skip = skip_channels.back();
        skip_channels.pop_back();
        up_.push_back(register_module(fmt::format("up{}_{}", level, i), stage(ch + skip, channels[level], h, w)));
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

    auto h = conv_in_->forward(to_frames(x));
    std::vector<torch::Tensor> skips;
    size_t d = 0;
    for (size_t level = 0; level <= downsample_.size(); ++level) {
      for (int64_t i = 0; i < layers_; ++i) {
        h = down_[d++]->forward(h, emb, frames_);
        skips.push_back(h);
      }
      if (level < downsample_.size()) h = downsample_[level]->forward(h);
    }
    h = mid_->forward(h, emb, frames_);
    size_t u = 0;
    for (int64_t level = 0; level <= upsamples_; ++level) {
      for (int64_t i = 0; i < layers_; ++i) {
        h = up_[u++]->forward(torch::cat({h, skips.back()}, 1), emb, frames_);
        skips.pop_back();
      }
      if (level < upsamples_) {
        h = torch::nn::functional::interpolate(
            h, torch::nn::functional::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
      }
    }
    h = conv_out_->forward(torch::silu(out_norm_->forward(h)));
    return to_video(h, frames_).contiguous().view(x.sizes());
  }

 private:
  int64_t frames_;
  bool frame_embedding_;
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
    "unet3d", "1.0.0", "small text-conditioned factorised 3D UNet (2D ResNet per frame + temporal module slot)",
    std::vector<asg::ParamSpec>{
        asg::int_list_param("channels", {32, 64}, "channels per resolution level (each further level halves H and W)")
            .range(4, 4096)
            .length(1, 6),
        asg::int_param("layers_per_level", 1, "ResNet+temporal blocks per level").range(1, 8),
        asg::int_param("groups", 8, "GroupNorm groups (reduced to gcd with the channel count)").range(1, 256),
        asg::int_param("emb_dim", 0, "timestep/text embedding width; 0 = 4 x channels[0]").range(0, 16384),
        asg::float_param("dropout", 0.0, "dropout inside ResNet blocks").range(0, 1),
        asg::bool_param("frame_embedding", true, "add a sinusoidal frame-index embedding to every frame's conditioning"),
    },
    [](const asg::Params& p, const asg::BackboneContext& ctx) { return std::make_shared<asg::unet::Unet3dImpl>(p, ctx); }))
