// The UNet body diffusers' UNet3DConditionModel (ModelScope) and I2VGenXLUNet share, under diffusers'
// parameter names: conv_in, time_embedding, transformer_in, down_blocks, mid_block, up_blocks,
// conv_norm_out, conv_out. The two networks differ only in what reaches conv_in, the embedding added to the
// timestep's and the cross-attention context; each backbone computes those and calls run().
//
//   conv_in -> transformer_in (temporal) -> down blocks [ResNet -> slot -> spatial transformer -> temporal
//   transformer] x layers, strided-conv downsample -> mid [ResNet -> slot -> spatial -> temporal -> ResNet ->
//   slot] -> up blocks [concat skip -> ResNet -> slot -> spatial -> temporal] x (layers + 1), nearest
//   upsample + conv -> GroupNorm -> SiLU -> conv_out
//
// Every temporal slot (diffusers' TemporalConvLayer positions, `temp_convs`) is the experiment's temporal
// plugin, built through BackboneContext::make_temporal. `temp_attentions = "swap"` puts VideoFactory's swapped
// spatiotemporal attention where the temporal transformers are (the VSD2M VideoFactory-style baseline).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "asg/kinds/backbone.h"
#include "asg/nn/attention.h"
#include "asg/params.h"

namespace asg::modelscope {

struct UNet3DSettings {
  std::vector<int64_t> channels;  // block_out_channels
  std::vector<bool> down_attention, up_attention;
  int64_t layers = 2, head_dim = 64, groups = 32, cross_dim = 0, frames = 0;
  double eps = 1e-5;
  nn::AttentionOptions kernel;
  // VideoFactory: swapped spatiotemporal attention (asg/nn/swap_attention.h) in place of every temporal
  // transformer, in windows of all frames x swap_window x swap_window positions.
  bool swap_attention = false;
  int64_t swap_window = 8;
};

// Reads and checks the parameters both backbones share (block types, widths, heads, groups, norm eps,
// cross_attention_dim, attention_backend; see unet3d_param_specs). `reference` names the diffusers class in
// messages.
UNet3DSettings read_unet3d_settings(const Params& p, const BackboneContext& ctx, const std::string& reference);

// The shared parameters' specs, with ModelScope's / I2VGen-XL's defaults (they are the same network size).
std::vector<ParamSpec> unet3d_param_specs();

// [B*F, C, H, W] <-> [B, C, F, H, W]
torch::Tensor to_video(const torch::Tensor& frames_first, int64_t frames);
torch::Tensor to_frames(const torch::Tensor& video);

// diffusers' Timesteps(dim, flip_sin_to_cos = True, downscale_freq_shift = 0), in float32.
torch::Tensor timestep_features(const torch::Tensor& t, int64_t dim);

struct TimestepEmbeddingImpl;
class TemporalTransformerImpl;
class LevelImpl;

class UNet3DBodyImpl : public torch::nn::Module {
 public:
  // in_channels: conv_in's input (the backbone decides what it concatenates); out_channels: conv_out's.
  UNet3DBodyImpl(const UNet3DSettings& s, int64_t in_channels, int64_t out_channels, const BackboneContext& ctx);

  // time_embedding(timestep_features(t)): [B, 4 C0]
  torch::Tensor embed_timestep(const torch::Tensor& t, torch::ScalarType dtype);
  int64_t timestep_feature_dim() const { return time_dim_; }

  // input [B*F, in_channels, H, W], emb [B*F, 4 C0], context [B*F, L, cross_dim] -> [B, out_channels, F, H, W]
  torch::Tensor run(const torch::Tensor& input, const torch::Tensor& emb, const torch::Tensor& context, int64_t frames);

 private:
  int64_t time_dim_ = 0, layers_ = 2;
  torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  std::shared_ptr<TimestepEmbeddingImpl> time_embedding_;
  std::shared_ptr<TemporalTransformerImpl> transformer_in_;
  torch::nn::ModuleList down_blocks_{nullptr}, up_blocks_{nullptr};
  std::shared_ptr<LevelImpl> mid_block_;
  torch::nn::GroupNorm conv_norm_out_{nullptr};
};
TORCH_MODULE(UNet3DBody);

}  // namespace asg::modelscope
