#include "asg/nn/attention.h"

#include <cmath>
#include <limits>

#include "asg/error.h"

namespace asg::nn {

namespace {

torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  return torch::softmax(torch::matmul(q, k.transpose(-1, -2)) * scale, -1).matmul(v);
}

}  // namespace

double masked_score(at::ScalarType dtype) {
  switch (dtype) {
    case at::kHalf: return std::numeric_limits<at::Half>::lowest();
    case at::kBFloat16: return std::numeric_limits<at::BFloat16>::lowest();
    case at::kDouble: return std::numeric_limits<double>::lowest();
    default: return std::numeric_limits<float>::lowest();
  }
}

const EnumNames<AttentionBackend>& attention_backend_names() {
  static const EnumNames<AttentionBackend> names{{AttentionBackend::Auto, "auto"},
                                                 {AttentionBackend::Naive, "naive"},
                                                 {AttentionBackend::Sdpa, "sdpa"}};
  return names;
}

AttentionBackend parse_attention_backend(const std::string& name) {
  return attention_backend_names().parse(name, "attention_backend");
}

AttentionBackend resolve_backend(const AttentionOptions& options) {
  return options.backend == AttentionBackend::Auto ? AttentionBackend::Sdpa : options.backend;
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const AttentionOptions& options) {
  switch (resolve_backend(options)) {
    case AttentionBackend::Naive: return naive_attention(q, k, v);
    case AttentionBackend::Sdpa: return at::scaled_dot_product_attention(q, k, v);
    case AttentionBackend::Auto: break;
  }
  throw internal_error("unresolved attention backend");
}

}  // namespace asg::nn
