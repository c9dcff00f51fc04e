// How the trainer calls the backbone: under autocast, with the image embedding when there is one, and through
// classifier-free guidance (text, and optionally image) when sampling. Private to the trainer (trainer.cpp).
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "asg/trainer.h"

namespace asg {

inline TextEmbedding concat_text(const TextEmbedding& a, const TextEmbedding& b) {
  // Token sequences may differ in length; pad the shorter with masked-out zeros.
  int64_t la = a.tokens.size(1), lb = b.tokens.size(1), l = std::max(la, lb);
  auto pad = [&](const TextEmbedding& e) {
    int64_t extra = l - e.tokens.size(1);
    if (extra == 0) return std::make_pair(e.tokens, e.mask);
    auto tok = torch::cat({e.tokens, torch::zeros({e.tokens.size(0), extra, e.tokens.size(2)}, e.tokens.options())}, 1);
    auto mask = torch::cat({e.mask, torch::zeros({e.mask.size(0), extra}, e.mask.options())}, 1);
    return std::make_pair(tok, mask);
  };
  auto [ta, ma] = pad(a);
  auto [tb, mb] = pad(b);
  return TextEmbedding{torch::cat({ta, tb}), torch::cat({ma, mb}), torch::cat({a.pooled, b.pooled})};
}

// bf16 or fp16 autocast on the trainer's device while it lives (CUDA or CPU autocast), the earlier state after;
// nothing in fp32.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device)
      : enabled_(precision != Precision::Float32), type_(device.type()) {
    if (!enabled_) return;
    was_enabled_ = at::autocast::is_autocast_enabled(type_);
    was_dtype_ = at::autocast::get_autocast_dtype(type_);
    at::autocast::set_autocast_dtype(type_, precision == Precision::Float16 ? at::kHalf : at::kBFloat16);
    at::autocast::set_autocast_enabled(type_, true);
  }
  ~AutocastScope() {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(type_, was_enabled_);
    at::autocast::set_autocast_dtype(type_, was_dtype_);
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
  at::DeviceType type_;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

// The image embedding of each clip's first given frame ([B, D] float on the clips' device): zeros for a clip
// given no frame or not kept (keep: [B] bool, undefined = all kept). clips: model space [B, 4, T, H, W];
// mask: [B, T] 0/1.
inline torch::Tensor first_given_frame_embedding(ImageEncoder& encoder, const torch::Tensor& clips, const torch::Tensor& mask,
                                          const torch::Tensor& keep = {}) {
  torch::NoGradGuard no_grad;
  const int64_t batch = clips.size(0);
  auto given = mask.to(clips.device()) > 0.5;                                // [B, T]
  auto used = given.any(1);
  if (keep.defined()) used = used & keep.to(clips.device(), torch::kBool);
  if (!used.any().item<bool>()) return torch::zeros({batch, encoder.dim()}, clips.options().dtype(torch::kFloat));
  auto first = given.to(torch::kInt).argmax(1);                             // the first given frame (argmax: first of ties)
  auto frames = clips.transpose(1, 2).index({torch::arange(batch, first.options().dtype(torch::kLong)), first});  // [B, 4, H, W]
  auto embedding = encoder.encode(frames).to(torch::kFloat);
  return embedding * used.to(embedding.scalar_type()).unsqueeze(1);
}

// The backbone's forward, with the image embedding when there is one, under autocast; float32 out.
inline torch::Tensor backbone_forward(Backbone& backbone, Precision precision, torch::Device device, const torch::Tensor& x, const torch::Tensor& t,
                               const TextEmbedding& text, const torch::Tensor& image_embedding) {
  AutocastScope autocast(precision, device);
  auto out = image_embedding.defined() ? backbone.forward_with_image_embedding(x, t, text, image_embedding) : backbone.forward(x, t, text);
  return out.to(torch::kFloat);
}

class GuidedDenoiser final : public Denoiser {
 public:
  // given: the condition channels [B, C+1, T, H, W] appended to every backbone input (image conditioning),
  // the same in both guidance branches; undefined without image conditioning.
  // image_scale > 0 (with `given`): guidance on the frames too (SampleCondition::image_guidance_scale).
  // image_embedding [B, D]: the backbone's image embedding of the given frame (undefined: it takes none); the
  // unconditional text branch gets zeros, as diffusers' I2VGenXLPipeline gives it.
  GuidedDenoiser(Backbone& backbone, const NoiseSchedule& schedule, TextEmbedding cond, TextEmbedding uncond, Precision precision,
                 torch::Device device, torch::Tensor given = {}, double image_scale = 0, torch::Tensor image_embedding = {})
      : backbone_(backbone), schedule_(schedule), cond_(std::move(cond)), uncond_(std::move(uncond)),
        both_(concat_text(cond_, uncond_)), precision_(precision), device_(device), given_(std::move(given)), image_scale_(image_scale),
        image_embedding_(std::move(image_embedding)) {
    if (image_scale_ > 0 && given_.defined()) all_three_ = concat_text(both_, uncond_);
    if (image_embedding_.defined()) no_image_embedding_ = torch::zeros_like(image_embedding_);
  }

  torch::Tensor predict(const torch::Tensor& noisy, int64_t t, double scale) override {
    auto tt = torch::full({noisy.size(0)}, static_cast<double>(t), noisy.options());
    const torch::Tensor x_t = given_.defined() ? torch::cat({noisy, given_}, 1) : noisy;
    // The sampler's arithmetic stays float32. `embeddings`: the image embedding per branch, in the batch's order.
    auto forward = [&](const torch::Tensor& x, const torch::Tensor& times, const TextEmbedding& text,
                       std::initializer_list<torch::Tensor> embeddings) {
      const torch::Tensor image = image_embedding_.defined() ? torch::cat(embeddings) : torch::Tensor();
      return backbone_forward(backbone_, precision_, device_, x, times, text, image);
    };
    const auto& with_image = image_embedding_;
    const auto& without_image = no_image_embedding_;
    if (all_three_.tokens.defined()) {
      // (text, frames), (-, frames), (-, no frames) in one batch.
      const auto x_none = torch::cat({noisy, torch::zeros_like(given_)}, 1);
      auto parts = forward(torch::cat({x_t, x_t, x_none}), torch::cat({tt, tt, tt}), all_three_, {with_image, with_image, without_image})
                       .chunk(3);
      return parts[2] + image_scale_ * (parts[1] - parts[2]) + scale * (parts[0] - parts[1]);
    }
    if (scale == 1.0) return forward(x_t, tt, cond_, {with_image});
    if (scale == 0.0) return forward(x_t, tt, uncond_, {without_image});
    auto out = forward(torch::cat({x_t, x_t}), torch::cat({tt, tt}), both_, {with_image, without_image});
    auto parts = out.chunk(2);
    return parts[1] + scale * (parts[0] - parts[1]);
  }
  const NoiseSchedule& schedule() const override { return schedule_; }

 private:
  Backbone& backbone_;
  const NoiseSchedule& schedule_;
  TextEmbedding cond_, uncond_, both_, all_three_;
  Precision precision_;
  torch::Device device_;
  torch::Tensor given_;
  double image_scale_;
  torch::Tensor image_embedding_, no_image_embedding_;
};

}  // namespace asg
