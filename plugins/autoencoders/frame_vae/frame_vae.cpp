// frame_vae: a small KL-regularised convolutional autoencoder applied to every frame, the shape of Stable
// Diffusion's image VAE (Rombach et al. 2022: ResNet blocks, strided-conv downsampling, a diagonal Gaussian
// posterior with a small KL weight) at a size that trains on a CPU in minutes. ModelScope and VideoLDM
// diffuse in exactly such a per-frame latent space; the frames are coded independently, so motion lives
// in the latent sequence for the backbone's temporal layers to model.
//
// Trained by `asg run` before the diffusion model (train_steps > 0; the autoencoder kind header says how),
// or loaded from the autoencoder.pt an earlier run wrote (weights = ...; then frozen).
#include <fmt/format.h>
#include <torch/torch.h>

#include <numeric>

#include "asg/error.h"
#include "asg/kinds/autoencoder.h"
#include "asg/nn/module_state.h"
#include "asg/plugin.h"

namespace asg::autoencoders {
namespace {

int64_t groups_for(int64_t channels) { return std::gcd<int64_t>(8, channels); }

// GroupNorm, SiLU, 3x3 conv, twice, with a residual (a 1x1 conv when the width changes).
struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(int64_t in, int64_t out) {
    norm1 = register_module("norm1", torch::nn::GroupNorm(groups_for(in), in));
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1)));
    norm2 = register_module("norm2", torch::nn::GroupNorm(groups_for(out), out));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(out, out, 3).padding(1)));
    if (in != out) skip = register_module("skip", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = conv1->forward(torch::silu(norm1->forward(x)));
    h = conv2->forward(torch::silu(norm2->forward(h)));
    return (skip ? skip->forward(x) : x) + h;
  }
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, skip{nullptr};
};
TORCH_MODULE(ResBlock);

class FrameVae final : public Autoencoder {
 public:
  FrameVae(const Params& p, const AutoencoderContext& ctx)
      : channels_(ctx.channels), frames_(ctx.frames), latent_channels_(p.integer("latent_channels")),
        steps_(p.integer("train_steps")), lr_(p.real("lr")), kl_weight_(p.real("kl_weight")) {
    const auto& widths = p.integers("channels");
    factor_ = int64_t{1} << (widths.size() - 1);
    if (ctx.height % factor_ != 0 || ctx.width % factor_ != 0)
      throw config_error(fmt::format("channels has {} entries, so the latent is 1/{} of the clip, but the clips are {}x{} (valid: "
                                     "a height and width divisible by {}, or fewer channels entries)",
                                     widths.size(), factor_, ctx.height, ctx.width, factor_));
    height_ = ctx.height / factor_;
    width_ = ctx.width / factor_;

    encoder_ = register_module("encoder", torch::nn::Sequential());
    encoder_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(channels_, widths.front(), 3).padding(1)));
    for (size_t level = 0; level < widths.size(); ++level) {
      const int64_t in = level == 0 ? widths.front() : widths[level - 1];
      encoder_->push_back(ResBlock(in, widths[level]));
      if (level + 1 < widths.size())
        encoder_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(widths[level], widths[level], 3).stride(2).padding(1)));
    }
    encoder_->push_back(torch::nn::GroupNorm(groups_for(widths.back()), widths.back()));
    encoder_->push_back(torch::nn::SiLU());
    encoder_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(widths.back(), 2 * latent_channels_, 3).padding(1)));

    decoder_ = register_module("decoder", torch::nn::Sequential());
    decoder_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(latent_channels_, widths.back(), 3).padding(1)));
    for (size_t level = widths.size(); level-- > 0;) {
      const int64_t in = level + 1 == widths.size() ? widths.back() : widths[level + 1];
      decoder_->push_back(ResBlock(in, widths[level]));
      if (level > 0) {
        decoder_->push_back(torch::nn::Upsample(
            torch::nn::UpsampleOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest)));
        decoder_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(widths[level], widths[level], 3).padding(1)));
      }
    }
    decoder_->push_back(torch::nn::GroupNorm(groups_for(widths.front()), widths.front()));
    decoder_->push_back(torch::nn::SiLU());
    decoder_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(widths.front(), channels_, 3).padding(1)));

    scaling_factor_ = p.real("scaling_factor");
    const std::string& weights = p.str("weights");
    if (!weights.empty()) load_weights(weights);
  }

  LatentShape latent() const override { return {latent_channels_, frames_, height_, width_, scaling_factor_}; }
  AutoencoderTraining training() const override { return {frozen_ ? 0 : steps_, lr_}; }

  torch::Tensor encode(const torch::Tensor& x) override { return moments(x)[0]; }

  torch::Tensor decode(const torch::Tensor& z) override {
    const int64_t b = z.size(0);
    auto frames = z.permute({0, 2, 1, 3, 4}).reshape({b * frames_, latent_channels_, height_, width_});
    auto out = decoder_->forward(frames);
    return out.view({b, frames_, channels_, height_ * factor_, width_ * factor_}).permute({0, 2, 1, 3, 4}).contiguous();
  }

  // The VAE objective of SD's first stage without its perceptual and adversarial terms: the squared error
  // of a reconstruction from a posterior sample, plus kl_weight times KL(q(z|x) || N(0, I)) per latent
  // element.
  torch::Tensor training_loss(const torch::Tensor& x) override {
    auto m = moments(x);
    auto logvar = m[1];
    auto z = m[0] + torch::exp(0.5 * logvar) * torch::randn_like(logvar);
    auto reconstruction = torch::mse_loss(decode(z), x);
    auto kl = 0.5 * (m[0].pow(2) + logvar.exp() - 1 - logvar).mean();
    return reconstruction + kl_weight_ * kl;
  }

 private:
  // Posterior mean and log-variance, each [B, Cz, T, h, w]; the log-variance clamped as SD clamps it.
  std::vector<torch::Tensor> moments(const torch::Tensor& x) {
    const int64_t b = x.size(0);
    auto frames = x.permute({0, 2, 1, 3, 4}).reshape({b * frames_, channels_, x.size(3), x.size(4)});
    auto out = encoder_->forward(frames).view({b, frames_, 2 * latent_channels_, height_, width_}).permute({0, 2, 1, 3, 4});
    auto parts = out.chunk(2, 1);
    return {parts[0].contiguous(), parts[1].clamp(-30, 20).contiguous()};
  }

  void load_weights(const std::string& file) {
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(file);
      nn::load_module_state(*this, archive, file);
      if (scaling_factor_ == 0) {
        torch::Tensor scale;
        archive.read(kLatentScalingFactorKey, scale);
        scaling_factor_ = scale.item<double>();
      }
    } catch (const Error& e) {
      throw config_error(fmt::format("weights = \"{}\": not the autoencoder.pt of a frame_vae with these channels and "
                                     "latent_channels: {} (valid: the autoencoder.pt a run with the same [autoencoder] "
                                     "settings wrote)",
                                     file, e.what()));
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      throw config_error(fmt::format("weights = \"{}\": not an autoencoder.pt LibTorch can read ({}) (valid: the "
                                     "autoencoder.pt a run with the same [autoencoder] settings wrote)",
                                     file, what.substr(0, what.find('\n'))));
    }
    frozen_ = true;
  }

  int64_t channels_, frames_, latent_channels_, steps_;
  double lr_, kl_weight_, scaling_factor_ = 0;
  int64_t factor_ = 1, height_ = 0, width_ = 0;
  bool frozen_ = false;
  torch::nn::Sequential encoder_{nullptr}, decoder_{nullptr};
};

}  // namespace
}  // namespace asg::autoencoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Autoencoder>(
    "frame_vae", "1.0.0", "small KL-regularised convolutional VAE applied per frame (SD's first stage, CPU-sized); trained by asg run",
    std::vector<asg::ParamSpec>{
        asg::int_list_param("channels", {32, 64, 64}, "encoder widths per level; each further level halves H and W (the "
                                                       "latent is 1/2^(entries-1) of the clip)")
            .range(4, 1024)
            .length(1, 6),
        asg::int_param("latent_channels", 4, "latent channels (SD: 4)").range(1, 64),
        asg::int_param("train_steps", 1000, "steps `asg run` trains it before the diffusion model (ignored with weights)")
            .range(0, 1e9),
        asg::float_param("lr", 1e-3, "its AdamW learning rate").range(0, 10),
        asg::float_param("kl_weight", 1e-6, "weight of the KL term (SD: 1e-6)").range(0, 10),
        asg::float_param("scaling_factor", 0.0, "latents are multiplied by this before diffusion; 0 = 1/std of the "
                                                "training latents, measured after training")
            .range(0, 1e6),
        asg::path_param("weights", "", "the autoencoder.pt an earlier run wrote: load it and stay frozen (no training)"),
    },
    [](const asg::Params& p, const asg::AutoencoderContext& ctx) {
      return std::make_shared<asg::autoencoders::FrameVae>(p, ctx);
    }))
