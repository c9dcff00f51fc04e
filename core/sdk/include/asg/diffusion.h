// Noise schedules and the parameterisation algebra shared by training (core) and samplers (plugins).
//
// Conventions (DDPM, Ho et al. 2020; v-parameterisation, Salimans & Ho 2022):
//   x_t = sqrt(abar_t) * x_0 + sqrt(1 - abar_t) * eps,  t in [0, T)
//   v   = sqrt(abar_t) * eps - sqrt(1 - abar_t) * x_0
// abar is kept in float64 and gathered per sample, then cast to the data's dtype and device.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <string>
#include <utility>

#include "asg/error.h"
#include "asg/diffusion_kinds.h"

namespace asg {

// The betas a schedule may be given ([diffusion] beta_start, beta_end, max_beta). 0 = the schedule's
// published values: linear 1e-4 .. 0.02 (DDPM), scaled_linear 0.00085 .. 0.012 (Stable Diffusion,
// ModelScope); cosine's betas follow its curve, capped at max_beta (0.999, as diffusers'
// squaredcos_cap_v2).
struct BetaOptions {
  double start = 0;
  double end = 0;
  double max_beta = 0.999;
};

class NoiseSchedule {
 public:
  // kind: "cosine" (Nichol & Dhariwal 2021, s = 0.008, betas clipped to max_beta), "linear"
  // (betas beta_start .. beta_end, DDPM), "scaled_linear" (linear in sqrt space, Stable Diffusion/ModelScope).
  // shift: the resolution shift of Hoogeboom et al. 2023 ("simple diffusion"; SD3's `shift` is the same
  // idea): every timestep's log-SNR is lowered by 2 ln(shift), so shift > 1 spends more of training and
  // sampling at high noise, where a small, redundant image (a big sprite in 8 identical-looking frames)
  // is otherwise already decided. shift = 1 is the unshifted schedule.
  NoiseSchedule(const std::string& kind, int64_t num_timesteps, Prediction prediction, double shift = 1.0,
                const BetaOptions& beta = {})
      : kind_(kind), num_timesteps_(num_timesteps), prediction_(prediction), shift_(shift) {
    if (!(shift > 0)) throw config_error("noise schedule shift must be > 0, got " + std::to_string(shift));
    auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    torch::Tensor betas;
    const ScheduleKind schedule = schedule_names().parse(kind, "noise schedule");
    if (schedule == ScheduleKind::Cosine) {
      if (beta.start != 0 || beta.end != 0)
        throw config_error("[diffusion] beta_start and beta_end apply to the linear and scaled_linear schedules; cosine's "
                           "betas follow its curve (valid for cosine: max_beta)");
      if (!(beta.max_beta > 0 && beta.max_beta < 1))
        throw config_error("[diffusion] max_beta = " + std::to_string(beta.max_beta) + " (valid: 0 < max_beta < 1)");
      const double s = 0.008;
      auto steps = torch::arange(num_timesteps + 1, opts) / static_cast<double>(num_timesteps);
      auto f = torch::cos((steps + s) / (1 + s) * (M_PI / 2)).pow(2);
      auto abar = f / f[0];
      betas = (1 - abar.slice(0, 1) / abar.slice(0, 0, num_timesteps)).clamp_max(beta.max_beta);
    } else {
      if (beta.max_beta != BetaOptions{}.max_beta)
        throw config_error("[diffusion] max_beta applies to the cosine schedule (valid for " + kind + ": beta_start, beta_end)");
      const bool linear = schedule == ScheduleKind::Linear;
      const double start = beta.start != 0 ? beta.start : (linear ? 1e-4 : 0.00085);
      const double end = beta.end != 0 ? beta.end : (linear ? 0.02 : 0.012);
      if (!(start > 0 && start < end && end < 1))
        throw config_error("[diffusion] beta_start = " + std::to_string(start) + ", beta_end = " + std::to_string(end) +
                           " (valid: 0 < beta_start < beta_end < 1)");
      betas = linear ? torch::linspace(start, end, num_timesteps, opts)
                     : torch::linspace(std::sqrt(start), std::sqrt(end), num_timesteps, opts).pow(2);
    }
    alphas_cumprod_ = torch::cumprod(1 - betas, 0);
    if (shift != 1.0) {
      // abar / (1 - abar) is the SNR; divide it by shift^2 (log-SNR - 2 ln shift).
      auto snr = alphas_cumprod_ / (1 - alphas_cumprod_) / (shift * shift);
      alphas_cumprod_ = snr / (1 + snr);
    }
  }

  int64_t num_timesteps() const { return num_timesteps_; }
  Prediction prediction() const { return prediction_; }
  const std::string& kind() const { return kind_; }
  double shift() const { return shift_; }
  const torch::Tensor& alphas_cumprod() const { return alphas_cumprod_; }  // float64 [T]

  // For every timestep u, the timestep whose log-SNR is closest to log-SNR(u) - 2 ln(factor): drawing u
  // uniformly and training on the result trains as if the schedule were shifted by `factor`, while
  // sampling keeps this schedule. [T] int64.
  torch::Tensor shifted_timesteps(double factor) const {
    auto log_snr = (alphas_cumprod_ / (1 - alphas_cumprod_)).log();  // decreasing in t
    auto acc = log_snr.accessor<double, 1>();
    auto out = torch::empty({num_timesteps_}, torch::kLong);
    auto o = out.accessor<int64_t, 1>();
    const double delta = 2 * std::log(factor);
    int64_t t = 0;
    for (int64_t u = 0; u < num_timesteps_; ++u) {
      const double target = acc[u] - delta;
      t = std::max(t, u);  // targets decrease with u: the answer never moves back
      while (t + 1 < num_timesteps_ && std::fabs(acc[t + 1] - target) <= std::fabs(acc[t] - target)) ++t;
      o[u] = t;
    }
    return out;
  }

  // abar for each sample, shaped to broadcast against `like` ([B, ...]).
  torch::Tensor abar(const torch::Tensor& t, const torch::Tensor& like) const {
    auto a = alphas_cumprod_.index_select(0, t.to(torch::kCPU).to(torch::kLong)).to(like.options());
    std::vector<int64_t> shape(like.dim(), 1);
    shape[0] = like.size(0);
    return a.view(shape);
  }

  torch::Tensor add_noise(const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& t) const {
    auto a = abar(t, x0);
    return a.sqrt() * x0 + (1 - a).sqrt() * eps;
  }

  // What the network is trained to output.
  torch::Tensor target(const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& t) const {
    switch (prediction_) {
      case Prediction::Epsilon: return eps;
      case Prediction::X0: return x0;
      case Prediction::V: {
        auto a = abar(t, x0);
        return a.sqrt() * eps - (1 - a).sqrt() * x0;
      }
    }
    throw internal_error("unhandled prediction");
  }

  // Converts a network output at x_t into (x0, eps).
  std::pair<torch::Tensor, torch::Tensor> to_x0_eps(const torch::Tensor& out, const torch::Tensor& x_t,
                                                    const torch::Tensor& t) const {
    auto a = abar(t, x_t);
    auto sa = a.sqrt(), s1a = (1 - a).sqrt();
    switch (prediction_) {
      case Prediction::Epsilon: return {(x_t - s1a * out) / sa, out};
      case Prediction::X0: return {out, (x_t - sa * out) / s1a};
      case Prediction::V: return {sa * x_t - s1a * out, s1a * x_t + sa * out};
    }
    throw internal_error("unhandled prediction");
  }

 private:
  std::string kind_;
  int64_t num_timesteps_;
  Prediction prediction_;
  double shift_ = 1.0;
  torch::Tensor alphas_cumprod_;
};

}  // namespace asg
