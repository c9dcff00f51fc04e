// Text-encoder plugins: captions -> conditioning tensors.
//
// Contract
// - encode() maps a batch of captions to token embeddings [B, L, D], a mask [B, L] (true = real
//   token) and a pooled embedding [B, D], all on the device of the module's parameters.
// - The empty caption "" is the unconditional input used by classifier-free guidance; its encoding
//   must not depend on any other caption in the batch.
// - A text encoder is a torch::nn::Module. Its parameters are trained with the backbone unless
//   frozen() is true (a pretrained encoder loaded from a TorchScript file, say).
// - Deterministic for the same captions and parameters.
#pragma once

#include "asg/plugin_kind.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace asg {

struct TextEmbedding {
  torch::Tensor tokens;  // float [B, L, D]
  torch::Tensor mask;    // bool  [B, L]
  torch::Tensor pooled;  // float [B, D]
};

class TextEncoder : public torch::nn::Module {
 public:
  virtual int64_t dim() const = 0;                                            // required: D
  virtual TextEmbedding encode(const std::vector<std::string>& captions) = 0;  // required
  virtual bool frozen() const { return false; }                               // optional
};

template <>
struct PluginKindTraits<TextEncoder> {
  static constexpr const char* name = "text_encoder";
  using Context = NoContext;
};

}  // namespace asg
