#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "asg/flop_counter.h"
#include "asg/interrupt.h"
#include "asg/progress.h"
#include "asg/stages/train_loop.h"

namespace asg {

namespace fs = std::filesystem;

TrainLoopOptions TrainLoopOptions::from(const Params& train) {
  TrainLoopOptions o;
  o.steps = train.integer("steps");
  o.log_every = train.integer("log_every");
  o.checkpoint_every = train.integer("checkpoint_every");
  o.log_grad_norm = train.real("grad_clip") > 0;
  return o;
}

TrainLoop::TrainLoop(DiffusionTrainer& trainer, BatchSource& batches, RunRecorder& recorder, TrainLoopOptions options)
    : trainer_(trainer), batches_(batches), recorder_(recorder), options_(options) {}

fs::path TrainLoop::checkpoint_path(int64_t step) const {
  return recorder_.run_dir() / "checkpoints" / fmt::format("step_{:07}.pt", step);
}

fs::path TrainLoop::run(int64_t start_step, DataPosition position) {
  const int64_t steps = options_.steps;
  Progress progress("train", steps, [&](const std::string& l) { recorder_.file_only(l); });
  double loss_sum = 0;
  int64_t in_sum = 0;
  // Time the training thread spends blocked on the next batch, against the whole loop: the loader's job
  // is to keep this near zero.
  using Clock = std::chrono::steady_clock;
  const auto loop_start = Clock::now();
  Clock::duration waited{};
  double flops_per_step = 0;
  int64_t skipped = 0;  // float16 steps whose gradient overflowed
  double loss_scale = 0;
  for (int64_t step = start_step + 1; step <= steps; ++step) {
    try {
      throw_if_interrupted();
    } catch (const Error&) {
      // SIGINT/SIGTERM between steps: keep what was trained, so `asg resume` continues from here.
      if (step - 1 > start_step) {
        trainer_.save_checkpoint(checkpoint_path(step - 1).string(), step - 1, position.to_checkpoint());
        recorder_.info(fmt::format("interrupted after step {}: saved {} (asg resume {} continues from it)", step - 1,
                                   checkpoint_path(step - 1).string(), recorder_.run_id()));
      }
      throw;
    }
    const auto wait_start = Clock::now();
    TrainBatch batch = batches_.next();
    waited += Clock::now() - wait_start;
    StepResult r;
    if (step == start_step + 1) {
      // The first step of this attempt, op by op: the model's matmul and convolution FLOPs, forward and
      // backward (asg/flop_counter.h). Every step of a run has the same shapes, so one step is the count.
      FlopCounter counter;
      r = trainer_.step(batch.x0, batch.captions, batch.frame_valid);
      flops_per_step = counter.flops();
      recorder_.metric("train/flops_per_step", step, flops_per_step);
      recorder_.info(fmt::format("model: {:.4g} GFLOP per training step (matmuls and convolutions, forward and backward)",
                                 flops_per_step / 1e9));
    } else {
      r = trainer_.step(batch.x0, batch.captions, batch.frame_valid);
    }
    position = std::move(batch.after);
    if (!std::isfinite(r.loss))
      throw data_error(fmt::format("training diverged: loss is {} at step {} (lower [train] lr or enable grad_clip)", r.loss,
                                   step));
    loss_sum += r.loss;
    ++in_sum;
    skipped += r.skipped ? 1 : 0;
    loss_scale = r.loss_scale;
    if (step % options_.log_every == 0 || step == steps) {
      recorder_.metric("train/loss", step, loss_sum / in_sum);
      recorder_.metric("train/lr", step, r.lr);
      if (options_.log_grad_norm && !r.skipped) recorder_.metric("train/grad_norm", step, r.grad_norm);
      if (r.loss_scale > 0) {
        recorder_.metric("train/loss_scale", step, r.loss_scale);
        recorder_.metric("train/skipped_steps", step, static_cast<double>(skipped));
      }
      recorder_.flush();
      loss_sum = 0;
      in_sum = 0;
    }
    progress.update(step, fmt::format("loss {:.4f}", r.loss));
    if (options_.checkpoint_every > 0 && step % options_.checkpoint_every == 0 && step != steps)
      trainer_.save_checkpoint(checkpoint_path(step).string(), step, position.to_checkpoint());
  }
  progress.finish();
  if (steps > start_step) {
    const double total = std::chrono::duration<double>(Clock::now() - loop_start).count();
    const double fraction = total > 0 ? std::chrono::duration<double>(waited).count() / total : 0;
    recorder_.metric("train/data_wait_fraction", steps, fraction);
    recorder_.info(fmt::format("data: training waited for batches {:.1f}% of its {:.1f} s", 100 * fraction, total));
    if (loss_scale > 0)
      recorder_.info(fmt::format("fp16: {} of {} steps skipped for an overflowing gradient; loss scale at the last step {:g}",
                                 skipped, steps - start_step, loss_scale));
    if (total > 0) {
      // Including the first step's counting and any checkpoint writes: a lower bound of the step's rate.
      const double per_second = flops_per_step * static_cast<double>(steps - start_step) / total;
      recorder_.metric("train/flops_per_second", steps, per_second);
      recorder_.info(fmt::format("model: {:.4g} GFLOP/s over the training loop", per_second / 1e9));
    }
  }
  const fs::path final_checkpoint = recorder_.run_dir() / "checkpoints" / "final.pt";
  trainer_.save_checkpoint(final_checkpoint.string(), steps, position.to_checkpoint());
  recorder_.artifact(final_checkpoint);
  return final_checkpoint;
}

}  // namespace asg
