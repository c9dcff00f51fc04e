// What every sampler plugin shares: which timesteps a run of n steps visits, the parameters all samplers
// take (steps, guidance, spacing, x0 clipping), and one guided model evaluation turned into (x0, eps).
// Header-only, for sampler plugins (needs torch).
//
// Timestep spacings (the names and rules of diffusers' schedulers, Lin et al. 2024 "Common Diffusion
// Noise Schedules and Sample Steps are Flawed", Table 2), for T training steps and n sampling steps:
// - linspace  round(linspace(0, T - 1, n)): first step at T - 1, last at 0 (ASG Lab's default)
// - leading   k * (T / n) + offset for k = 0..n-1 (integer division; Stable Diffusion / ModelScope
//             use offset 1): the first step is below T - 1
// - trailing  round(T - k * T / n) - 1 for k = 0..n-1: first step at T - 1, the last above 0
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "asg/error.h"
#include "asg/kinds/sampler.h"
#include "asg/params.h"

namespace asg {

enum class TimestepSpacing { Linspace, Leading, Trailing };
inline const EnumNames<TimestepSpacing>& timestep_spacing_names() {
  static const EnumNames<TimestepSpacing> names{
      {TimestepSpacing::Linspace, "linspace"}, {TimestepSpacing::Leading, "leading"}, {TimestepSpacing::Trailing, "trailing"}};
  return names;
}

// The timesteps a sampler visits, from the noisiest to the cleanest (strictly decreasing, in [0, T)).
// n is capped at T.
inline std::vector<int64_t> sampling_timesteps(int64_t T, int64_t n, TimestepSpacing spacing, int64_t offset = 0) {
  if (T < 1 || n < 1) throw internal_error("sampling_timesteps: T and n must be >= 1");
  n = std::min(n, T);
  std::vector<int64_t> ts(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    int64_t t = 0;
    switch (spacing) {
      case TimestepSpacing::Linspace:
        t = n == 1 ? T - 1 : std::llround(static_cast<double>(n - 1 - k) * (T - 1) / (n - 1));
        break;
      case TimestepSpacing::Leading: t = (n - 1 - k) * (T / n) + offset; break;
      case TimestepSpacing::Trailing: t = std::llround(T - static_cast<double>(k) * T / n) - 1; break;
    }
    ts[static_cast<size_t>(k)] = std::clamp<int64_t>(t, 0, T - 1);
  }
  return ts;
}

// The keys every sampler plugin has, appended to its own.
inline std::vector<ParamSpec> common_sampler_params(int64_t default_steps) {
  return {
      int_param("steps", default_steps, "denoising steps (model evaluations per clip, before guidance doubles them)").range(1, 100000),
      float_param("guidance_scale", 3.0,
                  "classifier-free guidance: uncond + scale * (cond - uncond); 1 = no guidance, the unconditional branch "
                  "is [eval] negative_prompt (empty by default)")
          .range(0, 100),
      enum_param("timestep_spacing", TimestepSpacing::Linspace, timestep_spacing_names(),
                 "which timesteps the steps visit (linspace: T-1 .. 0 evenly; leading: k*T/n + steps_offset, as Stable "
                 "Diffusion; trailing: T-1 downwards by T/n)"),
      int_param("steps_offset", 0, "added to every leading-spaced timestep (Stable Diffusion and ModelScope use 1)").range(0, 1000),
      bool_param("clip_x0", true, "clamp each predicted x0 to [-1, 1] (and make eps consistent with it)"),
  };
}

inline std::vector<ParamSpec> with_common_sampler_params(int64_t default_steps, std::vector<ParamSpec> own) {
  auto all = common_sampler_params(default_steps);
  all.insert(all.end(), std::make_move_iterator(own.begin()), std::make_move_iterator(own.end()));
  return all;
}

struct CommonSamplerSettings {
  int64_t steps = 25;
  double guidance_scale = 3.0;
  TimestepSpacing spacing = TimestepSpacing::Linspace;
  int64_t steps_offset = 0;
  bool clip_x0 = true;

  explicit CommonSamplerSettings(const Params& p)
      : steps(p.integer("steps")),
        guidance_scale(p.real("guidance_scale")),
        spacing(timestep_spacing_names().parse(p.str("timestep_spacing"), "timestep_spacing")),
        steps_offset(p.integer("steps_offset")),
        clip_x0(p.boolean("clip_x0")) {}

  std::vector<int64_t> timesteps(const NoiseSchedule& schedule) const {
    return sampling_timesteps(schedule.num_timesteps(), steps, spacing, steps_offset);
  }
};

// What every sampler starts from: the timesteps it visits, noisiest first, and the schedule's alpha-bar at each
// timestep as a double (read once, not one tensor element per step).
struct SamplingPlan {
  std::vector<int64_t> timesteps;
  std::vector<double> alphas_cumprod;  // indexed by timestep, [0, T)

  SamplingPlan(const NoiseSchedule& schedule, const CommonSamplerSettings& common) : timesteps(common.timesteps(schedule)) {
    const torch::Tensor abar = schedule.alphas_cumprod().to(torch::kFloat64).contiguous();
    alphas_cumprod.assign(abar.data_ptr<double>(), abar.data_ptr<double>() + abar.numel());
  }
  int64_t steps() const { return static_cast<int64_t>(timesteps.size()); }
  int64_t timestep(int64_t k) const { return timesteps[static_cast<size_t>(k)]; }
  double abar(int64_t t) const { return alphas_cumprod[static_cast<size_t>(t)]; }
};

// The base of the samplers that take the common parameters: it owns them and counts the steps.
class CommonSampler : public Sampler {
 public:
  explicit CommonSampler(const Params& p) : common_(p) {}
  int64_t num_steps() const override { return common_.steps; }

 protected:
  CommonSamplerSettings common_;
};

// One guided evaluation at integer timestep t, as (x0, eps); with clip, x0 is clamped to [-1, 1] and eps
// recomputed from it so that the pair still satisfies x_t = sqrt(abar) x0 + sqrt(1 - abar) eps.
inline std::pair<torch::Tensor, torch::Tensor> predict_x0_eps(Denoiser& model, const torch::Tensor& x_t, int64_t t,
                                                             const CommonSamplerSettings& s) {
  const NoiseSchedule& schedule = model.schedule();
  auto out = model.predict(x_t, t, s.guidance_scale);
  auto [x0, eps] = schedule.to_x0_eps(out, x_t, torch::full({x_t.size(0)}, t, torch::kLong));
  if (s.clip_x0) {
    const double a = schedule.alphas_cumprod()[t].item<double>();
    x0 = x0.clamp(-1, 1);
    eps = (x_t - std::sqrt(a) * x0) / std::sqrt(1 - a);
  }
  return {x0, eps};
}

}  // namespace asg
