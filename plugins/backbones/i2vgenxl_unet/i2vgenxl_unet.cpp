// i2vgenxl_unet: I2VGen-XL's UNet, exact to diffusers' I2VGenXLUNet, and with its image parts switched off,
// RDTF's DFGN. It is ModelScope's UNet (diffusers_unet3d.h, the same names and temporal slots) with three
// image inputs and an fps embedding:
//
//   image latents  [B, C, F, H, W] -> image_latents_proj_in (3 convs) -> image_latents_temporal_encoder
//                  (attention over the F frames at each pixel) -> concatenated to the noisy clip at conv_in
//   image context  the first frame's latent -> image_latents_context_embedding (conv, adaptive pool to 32x32,
//                  2 strided convs) -> (H'/4 W'/4) cross-attention tokens after the caption's
//   image embedding  a CLIP image embedding [B, D] -> context_embedding (MLP) -> C tokens after those
//   fps            the sinusoidal features of `fps` -> fps_embedding (MLP), added to the timestep embedding
//
// Where the image latents come from (`image_latents`): I2VGen-XL's pipeline puts the first frame's latent
// at frame 0 and, at frame j > 0, a constant plane of j / (F - 1) ("first_frame"); RDTF's DFGN gives the
// masked condition latents of whichever frames the task gives ("masked"). Both read the experiment's
// condition channels ([conditioning]); without them nothing is given and the latents are zeros.
#include <fmt/format.h>
#include <torch/torch.h>

#include "asg/kinds/backbone.h"
#include "asg/nn/diffusers_attention.h"
#include "asg/nn/feed_forward.h"
#include "asg/nn/module_state.h"
#include "asg/plugin.h"
#include "diffusers_unet3d.h"

namespace asg::i2vgenxl {
namespace {

using modelscope::to_frames;

// diffusers' I2VGenXLTransformerTemporalEncoder: LayerNorm -> self-attention over frames (+ residual) ->
// GELU feed-forward (+ residual); no norm before the feed-forward.
struct TemporalEncoderImpl : torch::nn::Module {
  TemporalEncoderImpl(int64_t dim, const nn::AttentionOptions& kernel) {
    norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)));
    attn1 = register_module("attn1", nn::DiffusersAttention(nn::DiffusersAttentionOptions{dim, 0, 2, dim, false, true, kernel}));
    ff = register_module("ff", nn::FeedForward(nn::FeedForwardOptions{dim, dim, 4, nn::FeedForwardActivation::Gelu}));
  }
  torch::Tensor forward(torch::Tensor x) {  // [N, F, dim]
    x = x + attn1->forward(norm1->forward(x));
    return x + ff->forward(x);
  }
  torch::nn::LayerNorm norm1{nullptr};
  nn::DiffusersAttention attn1{nullptr};
  nn::FeedForward ff{nullptr};
};
TORCH_MODULE(TemporalEncoder);

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

enum class ImageLatents { FirstFrame, Masked };

class I2VGenXLUnet final : public Backbone {
 public:
  I2VGenXLUnet(const Params& p, const BackboneContext& ctx)
      : settings_(modelscope::read_unet3d_settings(p, ctx, "I2VGenXLUNet")),
        body_(settings_, 2 * ctx.channels, ctx.channels, ctx),
        channels_(ctx.channels),
        fps_(p.integer("fps")),
        image_latents_(p.str("image_latents") == "masked" ? ImageLatents::Masked : ImageLatents::FirstFrame),
        image_context_(p.boolean("image_context")),
        image_embedding_(p.str("image_embedding") == "clip") {
    if (ctx.condition_channels != 0 && ctx.condition_channels != ctx.channels + 1)
      throw config_error(fmt::format("[backbone] i2vgenxl_unet takes the {} condition channels of [conditioning] (the condition latents and their "
                                     "mask), not {}",
                                     ctx.channels + 1, ctx.condition_channels));
    nn::adopt_children(*this, *body_);
    const int64_t c = ctx.channels, c0 = settings_.channels[0], temb = 4 * c0, d = settings_.cross_dim;
    // diffusers hard-codes 4 input channels for the two image-latent paths (SD's latents); here they are the
    // experiment's latent channels, the same thing for SD's VAE.
    image_latents_proj_in_ = register_module(
        "image_latents_proj_in", torch::nn::Sequential(conv(c, 4 * c), torch::nn::SiLU(), conv(4 * c, 4 * c), torch::nn::SiLU(), conv(4 * c, c)));
    image_latents_temporal_encoder_ = register_module("image_latents_temporal_encoder", TemporalEncoder(c, settings_.kernel));
    if (image_context_)
      image_latents_context_embedding_ = register_module(
          "image_latents_context_embedding",
          torch::nn::Sequential(conv(c, 8 * c), torch::nn::SiLU(), torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({32, 32})),
                                conv(8 * c, 16 * c, 2), torch::nn::SiLU(), conv(16 * c, d, 2)));
    if (image_embedding_)
      context_embedding_ = register_module("context_embedding",
                                           torch::nn::Sequential(torch::nn::Linear(d, temb), torch::nn::SiLU(), torch::nn::Linear(temb, d * c)));
    fps_embedding_ = register_module("fps_embedding",
                                     torch::nn::Sequential(torch::nn::Linear(c0, temb), torch::nn::SiLU(), torch::nn::Linear(temb, temb)));
  }

  int64_t image_embedding_dim() const override { return image_embedding_ ? settings_.cross_dim : 0; }

  // Without an image embedding, zeros: the unconditional input of diffusers' I2VGenXLPipeline.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const TextEmbedding& text) override {
    return forward_with_image_embedding(x, t, text, {});
  }

  torch::Tensor forward_with_image_embedding(const torch::Tensor& x, const torch::Tensor& t, const TextEmbedding& text,
                                             const torch::Tensor& image_embedding) override {
    const int64_t b = x.size(0), f = x.size(2), h = x.size(3), w = x.size(4), c = channels_;
    auto noisy = x.narrow(1, 0, c);
    auto latents = image_latents(x);

    auto fps = torch::full({b}, static_cast<double>(fps_), t.options().dtype(torch::kFloat32));
    auto fps_emb = fps_embedding_->forward(modelscope::timestep_features(fps, body_->timestep_feature_dim()).to(x.scalar_type()));
    auto emb = (body_->embed_timestep(t, x.scalar_type()) + fps_emb).repeat_interleave(f, 0);

    std::vector<torch::Tensor> context = {text.tokens};
    if (image_context_) {
      auto tokens = image_latents_context_embedding_->forward(latents.select(2, 0));  // [B, D, h', w']
      context.push_back(tokens.flatten(2).transpose(1, 2));
    }
    if (image_embedding_) {
      auto embedding = image_embedding.defined() ? image_embedding : torch::zeros({b, settings_.cross_dim}, x.options());
      context.push_back(context_embedding_->forward(embedding).view({b, c, settings_.cross_dim}));
    }

    // The image latents' own path: per frame through the convs, then per pixel through the frames.
    auto projected = image_latents_proj_in_->forward(to_frames(latents));                                  // [B*F, C, H, W]
    auto per_pixel = projected.view({b, f, c, h, w}).permute({0, 3, 4, 1, 2}).reshape({b * h * w, f, c});
    auto encoded = image_latents_temporal_encoder_->forward(per_pixel).view({b, h, w, f, c}).permute({0, 4, 3, 1, 2});

    auto input = to_frames(torch::cat({noisy, encoded}, 1));
    return body_->run(input, emb, torch::cat(context, 1).repeat_interleave(f, 0), f);
  }

 private:
  // [B, C, F, H, W]: from the condition channels when the experiment has them, zeros otherwise.
  torch::Tensor image_latents(const torch::Tensor& x) const {
    const int64_t c = channels_, f = x.size(2);
    auto given = x.size(1) > c ? x.narrow(1, c, c) : torch::zeros_like(x.narrow(1, 0, c));
    if (image_latents_ == ImageLatents::Masked) return given;
    // I2VGen-XL's pipeline: the image's latent, then frame j of F as a plane of j / (F - 1).
    if (f == 1) return given.narrow(2, 0, 1);
    auto position = torch::arange(1, f, x.options()).div(static_cast<double>(f - 1)).view({1, 1, f - 1, 1, 1});
    auto planes = torch::ones_like(given.narrow(2, 0, f - 1)) * position;
    return torch::cat({given.narrow(2, 0, 1), planes}, 2);
  }

  modelscope::UNet3DSettings settings_;
  modelscope::UNet3DBody body_;
  int64_t channels_, fps_;
  ImageLatents image_latents_;
  bool image_context_, image_embedding_;
  torch::nn::Sequential image_latents_proj_in_{nullptr}, image_latents_context_embedding_{nullptr}, context_embedding_{nullptr}, fps_embedding_{nullptr};
  TemporalEncoder image_latents_temporal_encoder_{nullptr};
};

std::vector<ParamSpec> specs() {
  auto s = modelscope::unet3d_param_specs();
  s.push_back(int_param("fps", 16, "the frame rate the fps embedding is given (I2VGen-XL's pipeline: target_fps = 16)").range(1, 240));
  s.push_back(string_param("image_latents", "first_frame",
                           "first_frame: the given first frame's latent, then planes of j/(F-1) (I2VGen-XL's pipeline); masked: the "
                           "condition latents as given, zeros elsewhere (RDTF's DFGN)")
                  .one_of({"first_frame", "masked"}));
  s.push_back(bool_param("image_context", true, "cross-attend to the first frame's latent through image_latents_context_embedding (I2VGen-XL: "
                                                "true; DFGN: false)"));
  s.push_back(string_param("image_embedding", "clip",
                           "clip: a CLIP image embedding through context_embedding, cross-attended (I2VGen-XL); none: no image embedding "
                           "(DFGN: 'remove CLIP image encoder')")
                  .one_of({"clip", "none"}));
  return s;
}

}  // namespace
}  // namespace asg::i2vgenxl

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Backbone>(
    "i2vgenxl_unet", "1.0.0",
    "I2VGen-XL's UNet, exact to diffusers' I2VGenXLUNet (image latents, image context, CLIP image embedding, fps), or RDTF's DFGN with the "
    "image embedding and context off; the experiment's temporal module sits in its temp_convs slots",
    asg::i2vgenxl::specs(),
    [](const asg::Params& p, const asg::BackboneContext& ctx) { return std::make_shared<asg::i2vgenxl::I2VGenXLUnet>(p, ctx); }))
