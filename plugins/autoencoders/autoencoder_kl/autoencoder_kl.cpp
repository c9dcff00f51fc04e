// autoencoder_kl: Stable Diffusion's image VAE, exact to diffusers' AutoencoderKL, the latent space VideoLDM,
// ModelScope T2V, I2VGen-XL and the VSD2M/RDTF code diffuse in. Frames are coded one at a time; the
// parameters carry diffusers' names, so a published `vae/` folder loads through [autoencoder] init_from.
//
//   encoder: conv_in -> [ResnetBlock2D x layers, asymmetric-pad strided conv] per level -> mid (ResNet,
//            single-head self-attention with GroupNorm and residual, ResNet) -> GroupNorm -> SiLU -> conv_out
//            (2 x latent: mean and log-variance) -> quant_conv (1x1); encode() returns the posterior mean
//   decoder: post_quant_conv (1x1) -> conv_in -> mid -> [ResnetBlock2D x (layers + 1), nearest x2 + conv]
//            per level, deepest first -> GroupNorm -> SiLU -> conv_out
// Every norm has eps 1e-6. Frozen: it is never trained by `asg run`.
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/autoencoder.h"
#include "asg/nn/attention.h"
#include "asg/nn/resnet_block.h"
#include "asg/plugin.h"

namespace asg::autoencoders {
namespace {

constexpr double kEps = 1e-6;

// UNetMidBlock2D's attention: diffusers Attention(C, heads = 1, dim_head = C, GroupNorm, residual, biases).
struct MidAttentionImpl : torch::nn::Module {
  MidAttentionImpl(int64_t channels, int64_t groups) {
    group_norm = register_module("group_norm", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(kEps)));
    to_q = register_module("to_q", torch::nn::Linear(channels, channels));
    to_k = register_module("to_k", torch::nn::Linear(channels, channels));
    to_v = register_module("to_v", torch::nn::Linear(channels, channels));
    to_out = register_module("to_out", torch::nn::ModuleList(torch::nn::Linear(channels, channels), torch::nn::Dropout(0.0)));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [N, C, H, W]
    const int64_t n = x.size(0), c = x.size(1);
    auto tokens = group_norm->forward(x.flatten(2)).transpose(1, 2);  // [N, HW, C]
    auto split = [&](const torch::Tensor& t) { return t.unsqueeze(1); };  // one head: [N, 1, HW, C]
    auto o = nn::attention(split(to_q->forward(tokens)), split(to_k->forward(tokens)), split(to_v->forward(tokens))).squeeze(1);
    o = to_out[0]->as<torch::nn::LinearImpl>()->forward(o);
    return o.transpose(1, 2).reshape(x.sizes()) + x;
    (void)n, (void)c;
  }
  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};
};
TORCH_MODULE(MidAttention);

nn::ResnetBlock resnet(int64_t in, int64_t out, int64_t groups) { return nn::ResnetBlock(nn::ResnetBlockOptions{in, out, 0, groups, kEps, 0.0}); }

struct MidBlockImpl : torch::nn::Module {
  MidBlockImpl(int64_t channels, int64_t groups) {
    resnets = register_module("resnets", torch::nn::ModuleList(resnet(channels, channels, groups), resnet(channels, channels, groups)));
    attentions = register_module("attentions", torch::nn::ModuleList(MidAttention(channels, groups)));
  }
  torch::Tensor forward(torch::Tensor h) {
    h = resnets[0]->as<nn::ResnetBlockImpl>()->forward(h);
    h = attentions[0]->as<MidAttentionImpl>()->forward(h);
    return resnets[1]->as<nn::ResnetBlockImpl>()->forward(h);
  }
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};
};
TORCH_MODULE(MidBlock);

// Down/UpEncoderBlock2D: ResNets, then (except at the last level) diffusers' Downsample2D(padding 0: pad
// right and bottom by one, 3x3 stride 2) or Upsample2D (nearest x2, 3x3).
struct CoderBlockImpl : torch::nn::Module {
  CoderBlockImpl(int64_t in, int64_t out, int64_t layers, int64_t groups, bool resample, bool down) : down(down) {
    resnets = register_module("resnets", torch::nn::ModuleList());
    for (int64_t i = 0; i < layers; ++i) resnets->push_back(resnet(i == 0 ? in : out, out, groups));
    if (resample) {
      auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).stride(down ? 2 : 1).padding(down ? 0 : 1));
      struct Holder : torch::nn::Module {};
      auto holder = std::make_shared<Holder>();
      holder->register_module("conv", conv);
      register_module(down ? "downsamplers" : "upsamplers", torch::nn::ModuleList(holder));
      resample_conv = conv;
    }
  }
  torch::Tensor forward(torch::Tensor h) {
    for (const auto& r : *resnets) h = r->as<nn::ResnetBlockImpl>()->forward(h);
    if (!resample_conv) return h;
    if (down) return resample_conv->forward(torch::constant_pad_nd(h, {0, 1, 0, 1}, 0));
    return resample_conv->forward(torch::nn::functional::interpolate(
        h, torch::nn::functional::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
  }
  bool down;
  torch::nn::ModuleList resnets{nullptr};
  torch::nn::Conv2d resample_conv{nullptr};
};
TORCH_MODULE(CoderBlock);

struct CoderImpl : torch::nn::Module {
  // Encoder (down) or decoder: channels per level as in the config, groups, layers per level.
  CoderImpl(bool encoder, int64_t image_channels, int64_t latent, const std::vector<int64_t>& channels, int64_t layers, int64_t groups) {
    const size_t levels = channels.size();
    const int64_t deepest = channels.back();
    auto conv3 = [](int64_t i, int64_t o) { return torch::nn::Conv2d(torch::nn::Conv2dOptions(i, o, 3).padding(1)); };
    if (encoder) {
      conv_in = register_module("conv_in", conv3(image_channels, channels[0]));
      blocks = register_module("down_blocks", torch::nn::ModuleList());
      int64_t out = channels[0];
      for (size_t i = 0; i < levels; ++i) {
        const int64_t in = out;
        out = channels[i];
        blocks->push_back(CoderBlock(in, out, layers, groups, i + 1 < levels, true));
      }
      mid_block = register_module("mid_block", MidBlock(deepest, groups));
      conv_norm_out = register_module("conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, deepest).eps(kEps)));
      conv_out = register_module("conv_out", conv3(deepest, 2 * latent));
    } else {
      conv_in = register_module("conv_in", conv3(latent, deepest));
      mid_block = register_module("mid_block", MidBlock(deepest, groups));
      blocks = register_module("up_blocks", torch::nn::ModuleList());
      int64_t out = deepest;
      for (size_t i = 0; i < levels; ++i) {
        const int64_t in = out;
        out = channels[levels - 1 - i];
        blocks->push_back(CoderBlock(in, out, layers + 1, groups, i + 1 < levels, false));
      }
      conv_norm_out = register_module("conv_norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels[0]).eps(kEps)));
      conv_out = register_module("conv_out", conv3(channels[0], image_channels));
    }
    this->encoder = encoder;
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = conv_in->forward(x);
    if (!encoder) h = mid_block->forward(h);
    for (const auto& b : *blocks) h = b->as<CoderBlockImpl>()->forward(h);
    if (encoder) h = mid_block->forward(h);
    return conv_out->forward(torch::silu(conv_norm_out->forward(h)));
  }
  bool encoder = true;
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  MidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(Coder);

class AutoencoderKl final : public Autoencoder {
 public:
  AutoencoderKl(const Params& p, const AutoencoderContext& ctx)
      : image_channels_(p.integer("image_channels")), latent_channels_(p.integer("latent_channels")), frames_(ctx.frames),
        height_(ctx.height), width_(ctx.width), scaling_factor_(p.real("scaling_factor")) {
    const auto channels = p.integers("block_out_channels");
    const int64_t groups = p.integer("norm_num_groups"), layers = p.integer("layers_per_block");
    for (int64_t c : channels)
      if (c % groups != 0)
        throw config_error(fmt::format("block_out_channels entry {} is not divisible by norm_num_groups = {}", c, groups));
    factor_ = int64_t{1} << (channels.size() - 1);
    if (ctx.height % factor_ != 0 || ctx.width % factor_ != 0)
      throw config_error(fmt::format("frames of {}x{} cannot be coded: {} levels downsample by {} (valid: a height and width divisible by "
                                     "{}, or fewer block_out_channels)",
                                     ctx.height, ctx.width, channels.size(), factor_, factor_));
    if (image_channels_ > ctx.channels)
      throw config_error(fmt::format("image_channels = {} but the clips have {} channels", image_channels_, ctx.channels));
    encoder_ = register_module("encoder", Coder(true, image_channels_, latent_channels_, channels, layers, groups));
    decoder_ = register_module("decoder", Coder(false, image_channels_, latent_channels_, channels, layers, groups));
    quant_conv_ = register_module("quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2 * latent_channels_, 2 * latent_channels_, 1)));
    post_quant_conv_ = register_module("post_quant_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(latent_channels_, latent_channels_, 1)));
  }

  LatentShape latent() const override {
    return LatentShape{latent_channels_, frames_, height_ / factor_, width_ / factor_, scaling_factor_};
  }

  // The frame codec alone, diffusers' AutoencoderKL.encode(x).latent_dist.mean and .decode(z).sample.
  torch::Tensor encode_frames(const torch::Tensor& frames) { return quant_conv_->forward(encoder_->forward(frames)).narrow(1, 0, latent_channels_); }
  torch::Tensor decode_frames(const torch::Tensor& z) { return decoder_->forward(post_quant_conv_->forward(z)); }

  torch::Tensor encode(const torch::Tensor& x) override {
    const int64_t b = x.size(0), t = x.size(2);
    auto frames = x.narrow(1, 0, image_channels_).transpose(1, 2).reshape({b * t, image_channels_, x.size(3), x.size(4)});
    auto z = encode_frames(frames);
    return z.view({b, t, z.size(1), z.size(2), z.size(3)}).transpose(1, 2);
  }

  torch::Tensor decode(const torch::Tensor& z) override {
    const int64_t b = z.size(0), t = z.size(2);
    auto frames = decode_frames(z.transpose(1, 2).reshape({b * t, z.size(1), z.size(3), z.size(4)}));
    auto x = frames.view({b, t, image_channels_, frames.size(2), frames.size(3)}).transpose(1, 2);
    if (image_channels_ == 3) x = torch::cat({x, torch::ones_like(x.narrow(1, 0, 1))}, 1);  // RGB codes no alpha: opaque
    return x;
  }

 private:
  int64_t image_channels_, latent_channels_, frames_, height_, width_, factor_ = 1;
  double scaling_factor_;
  Coder encoder_{nullptr}, decoder_{nullptr};
  torch::nn::Conv2d quant_conv_{nullptr}, post_quant_conv_{nullptr};
};

}  // namespace
}  // namespace asg::autoencoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Autoencoder>(
    "autoencoder_kl", "1.0.0", "Stable Diffusion's image VAE, exact to diffusers' AutoencoderKL, coding frames one at a time (frozen)",
    std::vector<asg::ParamSpec>{
        asg::int_list_param("block_out_channels", {128, 256, 512, 512}, "channels per level (SD: 128, 256, 512, 512; latents are 1/8)")
            .range(1, 65536),
        asg::int_param("layers_per_block", 2, "ResNets per encoder level (decoder levels have one more)").range(1, 16),
        asg::int_param("latent_channels", 4, "latent channels (SD: 4)").range(1, 1024),
        asg::int_param("norm_num_groups", 32, "GroupNorm groups").range(1, 1024),
        asg::int_param("image_channels", 3, "channels coded: 3 = RGB (SD's; decoded frames are opaque), 4 = RGBA (a VAE trained on it)")
            .range(1, 4),
        asg::float_param("scaling_factor", 0.18215, "latents are multiplied by this before diffusion (SD 1.x/2.x: 0.18215; 0 = measure "
                                                    "1/std on the training latents)")
            .range(0, 100),
    },
    [](const asg::Params& p, const asg::AutoencoderContext& ctx) { return std::make_shared<asg::autoencoders::AutoencoderKl>(p, ctx); }))
