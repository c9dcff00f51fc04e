// Multi-head scaled dot-product attention for plugins.
//
//   out = softmax(q k^T / sqrt(d)) v      q: [N, heads, Lq, d], k and v: [N, heads, Lk, d] -> [N, heads, Lq, d]
//
// Backends
// - sdpa:  at::scaled_dot_product_attention: fused flash/memory-efficient kernels on CUDA, a flash-attention
//          kernel on the CPU. What `auto` chooses.
// - naive: the textbook formula; autograd keeps the [N, heads, Lq, Lk] probabilities (O(L^2) memory). A
//          reference for tests and benchmarks.
// ASG Lab's own chunked kernel (the FlashAttention recurrence, written for LibTorch 1.13, which had no fused
// attention) was removed: on LibTorch 2.14's CPU, sdpa was faster and needed less memory at every size
// bench/temporal_modules.cpp measured (docs/development.md). Both backends agree to float rounding (tested),
// and each is deterministic on the CPU.
#pragma once

#include "asg/params.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace asg::nn {

enum class AttentionBackend { Auto, Naive, Sdpa };

struct AttentionOptions {
  AttentionBackend backend = AttentionBackend::Auto;
};

// The score that masks a key out of a softmax: the most negative finite value of the scores' dtype. A fixed
// -1e9 overflows float16 (the scores' dtype under fp16 autocast), and -inf would make a row whose keys are
// all masked NaN. In float32 the masked keys' weights come out exactly 0 either way.
double masked_score(at::ScalarType dtype);

// "auto", "naive", "sdpa": parsing for plugin parameters; throws asg::Error(Config).
AttentionBackend parse_attention_backend(const std::string& name);
const EnumNames<AttentionBackend>& attention_backend_names();
// The backend the options resolve to (`auto`: sdpa), for logs and benchmarks.
AttentionBackend resolve_backend(const AttentionOptions& options);

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& options = {});

}  // namespace asg::nn
