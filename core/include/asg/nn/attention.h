// Multi-head scaled dot-product attention for plugins, with a memory-efficient path for long sequences
// (STI attends over all F*H*W positions of a clip: 8192 tokens at the paper's 32x32 latents).
//
//   out = softmax(q k^T / sqrt(d)) v      q: [N, heads, Lq, d], k and v: [N, heads, Lk, d] -> [N, heads, Lq, d]
//
// Backends
// - naive:   the textbook formula. Autograd keeps the [N, heads, Lq, Lk] probabilities: O(L^2) memory.
// - chunked: queries in chunks; forward keeps only the output and one log-sum-exp per query, and
//            backward recomputes each chunk's probabilities (the FlashAttention recurrence, Dao et al.
//            2022). O(chunk * L) memory, about 1.3-1.5x the naive arithmetic. Written for LibTorch 1.13,
//            which had no fused attention. On LibTorch 2.14's CPU sdpa is faster and needs less memory at
//            every size bench/temporal_modules.cpp measures (docs/development.md), so nothing selects it
//            by default; it stays selectable until the same comparison has been made on a GPU.
// - sdpa:    at::scaled_dot_product_attention (LibTorch >= 2.0; fused flash/memory-efficient kernels on
//            CUDA, a flash-attention kernel on CPU). Requesting it on an older LibTorch is a config error.
// - auto:    sdpa where the linked LibTorch has it (the pinned one does); otherwise chunked when the naive
//            probabilities would exceed `naive_limit_bytes`, naive below that.
// All backends agree to float rounding (tested), and each is deterministic on the CPU.
#pragma once

#include "asg/params.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace asg::nn {

enum class AttentionBackend { Auto, Naive, Chunked, Sdpa };

struct AttentionOptions {
  AttentionBackend backend = AttentionBackend::Auto;
  int64_t chunk_bytes = int64_t(64) << 20;          // chunked: size of one chunk's probabilities
  int64_t naive_limit_bytes = int64_t(256) << 20;   // auto: largest probability tensor kept whole
};

// The score that masks a key out of a softmax: the most negative finite value of the scores' dtype. A fixed
// -1e9 overflows float16 (the scores' dtype under fp16 autocast), and -inf would make a row whose keys are
// all masked NaN. In float32 the masked keys' weights come out exactly 0 either way.
double masked_score(at::ScalarType dtype);

// Whether this build's LibTorch has at::scaled_dot_product_attention.
bool sdpa_available();
// "auto", "naive", "chunked", "sdpa": parsing for plugin parameters; throws asg::Error(Config).
AttentionBackend parse_attention_backend(const std::string& name);
const EnumNames<AttentionBackend>& attention_backend_names();
// The backend `auto` resolves to for these shapes (exposed for logs and benchmarks).
AttentionBackend resolve_backend(const AttentionOptions& options, int64_t batch_heads, int64_t lq, int64_t lk);

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const AttentionOptions& options = {});

}  // namespace asg::nn
