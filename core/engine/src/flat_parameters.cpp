#include "asg/flat_parameters.h"

#include <fmt/format.h>

#include <cmath>

#include "asg/error.h"

namespace asg {

FlatParameters::FlatParameters(std::vector<torch::Tensor> params) : params_(std::move(params)) {
  if (params_.empty()) throw internal_error("FlatParameters: no parameters");
  const auto options = params_.front().options();
  int64_t total = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    if (p.layout() != torch::kStrided || p.dtype() != options.dtype() || p.device() != options.device())
      throw internal_error(fmt::format("FlatParameters: parameter {} is {} {} on {}; every parameter must be a dense tensor of "
                                       "dtype {} on {}",
                                       i, p.layout() == torch::kStrided ? "dense" : "sparse", std::string(p.dtype().name()),
                                       p.device().str(), std::string(options.dtype().name()), options.device().str()));
    offsets_.push_back(total);
    total += p.numel();
  }
  torch::NoGradGuard no_grad;
  data_ = torch::empty({total}, options.requires_grad(false));
  grad_ = torch::zeros({total}, options.requires_grad(false));
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    auto data = slice(data_, i);
    data.copy_(p);
    p.set_data(data);
    p.mutable_grad() = slice(grad_, i);
  }
}

torch::Tensor FlatParameters::slice(const torch::Tensor& flat, size_t i) const {
  const auto& p = params_[i];
  return flat.narrow(0, offsets_[i], p.numel()).view(p.sizes());
}

double FlatParameters::clip_grad_norm(double max_norm) {
  // torch::nn::utils::clip_grad_norm_'s reduction: the 2-norm of the per-tensor 2-norms.
  std::vector<torch::Tensor> norms;
  norms.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) norms.push_back(slice(grad_, i).norm(2));
  auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  auto coef = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
  grad_.mul_(coef);
  return total.item<double>();
}

FlatAdamW::FlatAdamW(FlatParameters& params, FlatAdamWOptions options)
    : params_(params),
      options_(options),
      exp_avg_(torch::zeros_like(params.data())),
      exp_avg_sq_(torch::zeros_like(params.data())) {}

void FlatAdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  const auto& p = params_.data();
  const auto& grad = params_.grad();
  if (options_.weight_decay != 0) p.mul_(1 - lr * options_.weight_decay);
  ++steps_;
  const double bias_correction1 = 1 - std::pow(options_.beta1, steps_);
  const double bias_correction2 = 1 - std::pow(options_.beta2, steps_);
  exp_avg_.mul_(options_.beta1).add_(grad, 1 - options_.beta1);
  exp_avg_sq_.mul_(options_.beta2).addcmul_(grad, grad, 1 - options_.beta2);
  auto denom = (exp_avg_sq_.sqrt() / std::sqrt(bias_correction2)).add_(options_.eps);
  p.addcdiv_(exp_avg_, denom, -lr / bias_correction1);
}

}  // namespace asg
