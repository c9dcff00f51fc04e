// torchscript_autoencoder: a frozen, pretrained image autoencoder loaded from a user-supplied TorchScript
// file (e.g. Stable Diffusion's VAE, which VideoLDM, ModelScope and I2VGen-XL diffuse in; the weights
// cannot be downloaded here). Frames are coded one by one. The module's interface, checked when the
// experiment is built:
//   encode(x: Tensor[N, C, H, W] float in [-1, 1]) -> Tensor[N, Cz, H/f, W/f]   (the posterior mean)
//   decode(z: Tensor[N, Cz, H/f, W/f]) -> Tensor[N, C, H, W]
// with C = image_channels. With image_channels = 3 (SD's VAE is RGB) the module sees the clip's colour
// channels and decoded frames come back opaque: use it on data composited onto a background ([dataset]
// background), where alpha is 1 everywhere. README.md shows how to export diffusers' AutoencoderKL.
#include <torch/script.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include "asg/error.h"
#include "asg/kinds/autoencoder.h"
#include "asg/nn/torchscript.h"
#include "asg/plugin.h"

namespace asg::autoencoders {
namespace {

constexpr const char* kInterface =
    "encode(x: Tensor[N, C, H, W] in [-1, 1]) -> Tensor[N, Cz, H/f, W/f] and decode(z: Tensor[N, Cz, H/f, W/f]) -> "
    "Tensor[N, C, H, W]";

class TorchScriptAutoencoder final : public Autoencoder {
 public:
  TorchScriptAutoencoder(const Params& p, const AutoencoderContext& ctx)
      : file_(p.str("model")),
        module_(load_torchscript(file_, p.str("sha256"), "autoencoder", kInterface)),
        image_channels_(p.integer("image_channels")),
        frames_(ctx.frames),
        height_(ctx.height),
        width_(ctx.width),
        scaling_factor_(p.real("scaling_factor")) {
    module_.eval();
    for (const char* method : {"encode", "decode"})
      if (!module_.find_method(method))
        throw config_error(fmt::format("{}: the module has no method '{}' (expected: {})", file_, method, kInterface));
    // The interface, on one black frame: the latent's shape, and a decode back to the frame's shape.
    torch::Tensor z, back;
    try {
      torch::NoGradGuard no_grad;
      z = call("encode", torch::zeros({1, image_channels_, height_, width_}));
      back = call("decode", z);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      const std::string what = e.what();
      throw config_error(fmt::format("{}: calling encode/decode on a [1, {}, {}, {}] frame failed ({}); expected: {} (image_channels "
                                     "= {} must be the module's input channels)",
                                     file_, image_channels_, height_, width_, what.substr(0, what.find('\n')), kInterface,
                                     image_channels_));
    }
    if (z.dim() != 4 || back.sizes() != torch::IntArrayRef({1, image_channels_, height_, width_}))
      throw config_error(fmt::format("{}: encode gave {} and decode {} for a [1, {}, {}, {}] frame (expected: {}; image_channels = "
                                     "{} must be the module's input channels)",
                                     file_, c10::str(z.sizes()), c10::str(back.sizes()), image_channels_, height_, width_,
                                     kInterface, image_channels_));
    latent_channels_ = z.size(1);
    latent_height_ = z.size(2);
    latent_width_ = z.size(3);
  }

  LatentShape latent() const override { return {latent_channels_, frames_, latent_height_, latent_width_, scaling_factor_}; }

  torch::Tensor encode(const torch::Tensor& x) override {
    const int64_t b = x.size(0);
    auto frames = x.narrow(1, 0, image_channels_).permute({0, 2, 1, 3, 4}).reshape({b * frames_, image_channels_, height_, width_});
    auto z = call("encode", frames);
    return z.view({b, frames_, latent_channels_, latent_height_, latent_width_}).permute({0, 2, 1, 3, 4}).contiguous();
  }

  torch::Tensor decode(const torch::Tensor& z) override {
    const int64_t b = z.size(0);
    auto latents = z.permute({0, 2, 1, 3, 4}).reshape({b * frames_, latent_channels_, latent_height_, latent_width_});
    auto x = call("decode", latents).view({b, frames_, image_channels_, height_, width_}).permute({0, 2, 1, 3, 4});
    if (image_channels_ == 3) x = torch::cat({x, torch::ones_like(x.narrow(1, 0, 1))}, 1);  // opaque
    return x.contiguous();
  }

  void to(torch::Device device, bool non_blocking = false) override {
    torch::nn::Module::to(device, non_blocking);
    module_.to(device, non_blocking);
  }

 private:
  torch::Tensor call(const char* method, const torch::Tensor& input) {
    auto out = module_.get_method(method)({input});
    if (!out.isTensor())
      throw config_error(fmt::format("{}: {} returned {} instead of a tensor (expected: {})", file_, method, out.tagKind(), kInterface));
    return out.toTensor().to(torch::kFloat);
  }

  std::string file_;
  torch::jit::script::Module module_;
  int64_t image_channels_, frames_, height_, width_;
  double scaling_factor_;
  int64_t latent_channels_ = 0, latent_height_ = 0, latent_width_ = 0;
};

}  // namespace
}  // namespace asg::autoencoders

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Autoencoder>(
    "torchscript_autoencoder", "1.0.0", "frozen pretrained image autoencoder (e.g. SD's VAE) from a TorchScript file, per frame",
    asg::with_torchscript_model_params(
        "TorchScript file with encode/decode methods (see README)",
        {
        asg::float_param("scaling_factor", 0.18215, "latents are multiplied by this before diffusion (SD 1.x/2.x: 0.18215); 0 "
                                                    "= 1/std of the training latents")
            .range(0, 1e6),
        asg::int_param("image_channels", 3, "channels the module codes: 3 = RGB (SD's VAE; decoded frames are opaque), 4 = RGBA")
            .range(3, 4),
    }),
    [](const asg::Params& p, const asg::AutoencoderContext& ctx) {
      return std::make_shared<asg::autoencoders::TorchScriptAutoencoder>(p, ctx);
    }))
