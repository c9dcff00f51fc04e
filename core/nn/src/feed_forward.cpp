#include "asg/nn/feed_forward.h"

namespace asg::nn {
namespace {
// diffusers' GEGLU / GELU activation modules hold their projection as `proj`.
struct ProjectionImpl : torch::nn::Module {
  ProjectionImpl(int64_t in, int64_t out) { proj = register_module("proj", torch::nn::Linear(in, out)); }
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(Projection);
}  // namespace

FeedForwardImpl::FeedForwardImpl(const FeedForwardOptions& o) : activation_(o.activation) {
  const int64_t inner = o.dim * o.mult, out = o.dim_out > 0 ? o.dim_out : o.dim;
  Projection projection(o.dim, activation_ == FeedForwardActivation::Geglu ? 2 * inner : inner);
  proj_ = projection->proj;
  out_ = torch::nn::Linear(inner, out);
  // net.0 = the activation with its projection, net.1 = Dropout, net.2 = the output Linear.
  register_module("net", torch::nn::ModuleList(projection, torch::nn::Dropout(0.0), out_));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  auto h = proj_->forward(x);
  if (activation_ == FeedForwardActivation::Geglu) {
    auto halves = h.chunk(2, -1);
    h = halves[0] * torch::gelu(halves[1]);
  } else {
    h = torch::gelu(h);
  }
  return out_->forward(h);
}

}  // namespace asg::nn
