#include "asg/nn/attention.h"

#include <fmt/format.h>
#include <torch/version.h>

#include <cmath>
#include <limits>

#include "asg/error.h"

namespace asg::nn {

namespace {

torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  return torch::softmax(torch::matmul(q, k.transpose(-1, -2)) * scale, -1).matmul(v);
}

int64_t chunk_rows(int64_t chunk_bytes, const torch::Tensor& q, const torch::Tensor& k) {
  const int64_t row_bytes = q.size(0) * q.size(1) * k.size(2) * static_cast<int64_t>(q.element_size());
  return std::max<int64_t>(1, chunk_bytes / std::max<int64_t>(1, row_bytes));
}

// Forward keeps the output and the log-sum-exp of every query's scores; backward recomputes the
// probabilities one chunk of queries at a time. Peak extra memory: one chunk's [N, h, rows, Lk].
struct ChunkedAttention : torch::autograd::Function<ChunkedAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, int64_t rows) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    const int64_t lq = q.size(2);
    auto out = torch::empty_like(q, torch::MemoryFormat::Contiguous);
    auto lse = torch::empty({q.size(0), q.size(1), lq, 1}, q.options());
    auto kt = k.transpose(-1, -2);
    for (int64_t start = 0; start < lq; start += rows) {
      const int64_t n = std::min(rows, lq - start);
      auto scores = torch::matmul(q.narrow(2, start, n), kt).mul_(scale);
      auto max = std::get<0>(scores.max(-1, true));
      auto p = scores.sub_(max).exp_();
      auto sum = p.sum(-1, true);
      out.narrow(2, start, n).copy_(torch::matmul(p, v).div_(sum));
      lse.narrow(2, start, n).copy_(max + sum.log());
    }
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["rows"] = rows;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const int64_t rows = ctx->saved_data["rows"].toInt();
    const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
    auto dout = grads[0].contiguous();
    auto delta = (dout * out).sum(-1, true);  // rowsum(dO o O) = sum_j P_ij dP_ij
    auto dq = torch::empty_like(q, torch::MemoryFormat::Contiguous);
    auto dk = torch::zeros_like(k, torch::MemoryFormat::Contiguous);
    auto dv = torch::zeros_like(v, torch::MemoryFormat::Contiguous);
    auto kt = k.transpose(-1, -2), vt = v.transpose(-1, -2);
    const int64_t lq = q.size(2);
    for (int64_t start = 0; start < lq; start += rows) {
      const int64_t n = std::min(rows, lq - start);
      auto qi = q.narrow(2, start, n), doi = dout.narrow(2, start, n);
      auto p = torch::matmul(qi, kt).mul_(scale).sub_(lse.narrow(2, start, n)).exp_();  // [N, h, n, Lk]
      dv.add_(torch::matmul(p.transpose(-1, -2), doi));
      auto ds = torch::matmul(doi, vt).sub_(delta.narrow(2, start, n)).mul_(p).mul_(scale);
      dq.narrow(2, start, n).copy_(torch::matmul(ds, k));
      dk.add_(torch::matmul(ds.transpose(-1, -2), qi));
    }
    return {dq, dk, dv, torch::Tensor()};
  }
};

}  // namespace

double masked_score(at::ScalarType dtype) {
  switch (dtype) {
    case at::kHalf: return std::numeric_limits<at::Half>::lowest();
    case at::kBFloat16: return std::numeric_limits<at::BFloat16>::lowest();
    case at::kDouble: return std::numeric_limits<double>::lowest();
    default: return std::numeric_limits<float>::lowest();
  }
}

bool sdpa_available() {
#if TORCH_VERSION_MAJOR >= 2
  return true;
#else
  return false;
#endif
}

const EnumNames<AttentionBackend>& attention_backend_names() {
  static const EnumNames<AttentionBackend> names{{AttentionBackend::Auto, "auto"},
                                                 {AttentionBackend::Naive, "naive"},
                                                 {AttentionBackend::Chunked, "chunked"},
                                                 {AttentionBackend::Sdpa, "sdpa"}};
  return names;
}

AttentionBackend parse_attention_backend(const std::string& name) {
  const AttentionBackend backend = attention_backend_names().parse(name, "attention_backend");
  if (backend == AttentionBackend::Sdpa && !sdpa_available())
    throw config_error(fmt::format("attention backend \"sdpa\" needs LibTorch >= 2.0; this build links {}.{}.{} (valid here: "
                                   "auto, naive, chunked)",
                                   TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH));
  return backend;
}

AttentionBackend resolve_backend(const AttentionOptions& options, int64_t batch_heads, int64_t lq, int64_t lk) {
  if (options.backend != AttentionBackend::Auto) return options.backend;
  if (sdpa_available()) return AttentionBackend::Sdpa;
  const int64_t probability_bytes = batch_heads * lq * lk * 4;
  return probability_bytes > options.naive_limit_bytes ? AttentionBackend::Chunked : AttentionBackend::Naive;
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const AttentionOptions& options) {
  switch (resolve_backend(options, q.size(0) * q.size(1), q.size(2), k.size(2))) {
    case AttentionBackend::Naive: return naive_attention(q, k, v);
    case AttentionBackend::Chunked:
      return ChunkedAttention::apply(q.contiguous(), k.contiguous(), v.contiguous(), chunk_rows(options.chunk_bytes, q, k));
    case AttentionBackend::Sdpa:
#if TORCH_VERSION_MAJOR >= 2
      return at::scaled_dot_product_attention(q, k, v);
#else
      throw config_error("attention backend \"sdpa\" needs LibTorch >= 2.0");
#endif
    case AttentionBackend::Auto: break;
  }
  throw internal_error("unresolved attention backend");
}

}  // namespace asg::nn
