// Image-encoder plugins: a condition frame -> one embedding vector, for a backbone that cross-attends to an
// image embedding besides the frames it is given (I2VGen-XL's CLIP image embedding). Optional: an experiment
// has an [image_encoder] table only when its backbone asks for one (Backbone::image_embedding_dim() > 0).
//
// Contract
// - encode(frames) maps model-space frames [B, 4, H, W] (premultiplied RGBA in [-1, 1]: the pixels, before
//   any autoencoder) to [B, dim()] on the device of the module's parameters. The plugin's own preprocessing
//   (crop, resize, normalisation) is part of encode(), so the embedding is exactly what its reference
//   pipeline computes from the same picture.
// - The core gives it the first frame the condition task gives each clip and puts zeros, not an encoding,
//   where a clip is given no frame or its caption is dropped, and in guidance's unconditional branch (what
//   diffusers' I2VGenXLPipeline does). So encode() never sees an "empty" frame.
// - Pretrained and frozen: the core moves it to the run's device, calls encode() under torch::NoGradGuard and
//   never trains it; its weights come from [image_encoder] init_from.
// - Deterministic; one frame's embedding does not depend on the other frames in the batch.
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

namespace asg {

class ImageEncoder : public torch::nn::Module {
 public:
  virtual int64_t dim() const = 0;                                // required: D
  virtual torch::Tensor encode(const torch::Tensor& frames) = 0;  // required: [B, 4, H, W] -> [B, D]
};

template <>
struct PluginKindTraits<ImageEncoder> {
  static constexpr const char* name = "image_encoder";
  using Context = NoContext;
};

}  // namespace asg
