// Captions as the id and padding-mask tensors a text tower takes: each caption tokenized to `length` ids by a
// tokenizer whose tokenize(text, length) gives {ids, real_tokens} (asg::SentencePieceTokenizer,
// asg::WordPieceTokenizer), the mask true on the caption's own tokens. Shared by the text-encoder plugins.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace asg::nn {

struct TokenBatch {
  torch::Tensor ids;   // int64 [B, length]
  torch::Tensor real;  // bool  [B, length]
};

template <typename Tokenizer>
TokenBatch token_batch(const Tokenizer& tokenizer, const std::vector<std::string>& captions, int64_t length) {
  const auto batch = static_cast<int64_t>(captions.size());
  TokenBatch out{torch::empty({batch, length}, torch::kLong), torch::zeros({batch, length}, torch::kBool)};
  for (int64_t b = 0; b < batch; ++b) {
    const auto t = tokenizer.tokenize(captions[static_cast<size_t>(b)], length);
    out.ids[b].copy_(torch::tensor(t.ids, torch::kLong));
    out.real[b].narrow(0, 0, t.real_tokens).fill_(true);
  }
  return out;
}

}  // namespace asg::nn
