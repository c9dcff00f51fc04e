// Benchmark: how much of the machine's matrix-multiply throughput a training step of the model zoo uses.
// The same run measures (1) the fp32 GEMM peak: the best of repeated 1024x1024x1024 torch::mm at the
// step's thread count, and (2) for each experiment, the training step (DiffusionTrainer::step: forward,
// backward, AdamW, EMA) on latents of the experiment's shape: its FLOPs counted op by op
// (asg/flop_counter.h: matmuls and convolutions, forward and backward) and its median time. Printed: FLOP/s
// and the ratio to the GEMM peak (model FLOP utilisation). The autoencoder is left out: the diffusion model
// is what trains.
//
//   asg_bench_model_flops [--scale 1] [--batch 1] [--steps 3] [--threads 0]
//   --scale 1: bench/experiments/vsd2m_cpu (the paper systems' blocks at CPU width, 32x32x8 latents); 0: experiments/synth
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>

#include "asg/build.h"
#include "asg/experiment.h"
#include "asg/flop_counter.h"
#include "asg/trainer.h"
#include "asg/allocator.h"
#include "bench_args.h"

namespace {

double gemm_peak_flops() {
  torch::NoGradGuard no_grad;
  const int64_t n = 1024;
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  double best = 0;
  for (int i = 0; i < 12; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto c = torch::mm(a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i >= 2) best = std::max(best, 2.0 * n * n * n / s);
  }
  return best;
}

struct Measured {
  std::string name;
  int64_t parameters = 0;
  double flops = 0, step_ms = 0;
};

Measured measure(const std::string& file, int64_t batch, int steps) {
  asg::PluginCatalog catalog;
  asg::Experiment exp = asg::load_experiment(file, {}, catalog);
  const asg::NoiseSchedule schedule = asg::noise_schedule(exp);
  asg::BuiltExperiment built = asg::build_experiment(exp, schedule, 0);
  asg::TrainOptions options = asg::TrainOptions::from(exp.train);
  for (const auto& task : exp.conditioning.strs("tasks"))
    options.condition_tasks.push_back(asg::condition_task_names().parse(task, "tasks"));
  asg::DiffusionTrainer trainer(built.text_encoder, built.backbone, schedule, options, torch::kCPU, 7);
  std::vector<int64_t> shape{batch};
  shape.insert(shape.end(), built.diffusion_shape.begin(), built.diffusion_shape.end());
  auto x0 = torch::randn(shape);
  std::vector<std::string> captions(static_cast<size_t>(batch), "a red star moves from left to right");
  trainer.step(x0, captions);  // warm-up
  Measured m{exp.name, trainer.parameter_count()};
  {
    asg::FlopCounter counter;
    trainer.step(x0, captions);
    m.flops = counter.flops();
  }
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    trainer.step(x0, captions);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  m.step_ms = asg::bench::median(ms);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"scale", 1, 0}, {"batch", 1, 1}, {"steps", 3, 1}, {"threads", 0, 0}});
  if (!args.parse(argc, argv)) return 2;
  if (args["threads"] > 0) torch::set_num_threads(args["threads"]);
  asg::keep_freed_memory_for_reuse();  // as `asg run` does
  const std::string dir = std::string(ASG_SOURCE_DIR) + (args["scale"] == 1 ? "/bench/experiments/vsd2m_cpu/" : "/experiments/synth/");
  const double peak = gemm_peak_flops();
  fmt::print("fp32 GEMM peak (1024^3 torch::mm, best of 10, {} threads): {:.1f} GFLOP/s\n", torch::get_num_threads(), peak / 1e9);
  fmt::print("training step at batch {} ({}), median of {} steps:\n", args["batch"], dir, args["steps"]);
  fmt::print("  {:<28} {:>12} {:>12} {:>12} {:>12} {:>10}\n", "experiment", "parameters", "GFLOP/step", "step", "GFLOP/s",
             "of peak");
  for (const char* name : {"videoldm", "videoldm_sti", "videofactory", "i2vgen_xl", "dit"}) {
    const Measured m = measure(dir + name + ".toml", args["batch"], args["steps"]);
    const double rate = m.flops / (m.step_ms / 1e3);
    if (m.flops <= 0) {
      fmt::print(stderr, "{}: no FLOPs counted\n", m.name);
      return 1;
    }
    fmt::print("  {:<28} {:>12} {:>12.2f} {:>9.0f} ms {:>12.1f} {:>9.1f}%\n", m.name, m.parameters, m.flops / 1e9, m.step_ms,
               rate / 1e9, 100 * rate / peak);
  }
  return 0;
}
