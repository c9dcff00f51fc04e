// The train-loop stage: steps, loss records and checkpoints (every N steps, and on SIGINT/SIGTERM).
// Host-only (plugins never include it); run_experiment (asg/runner.h) composes the stages.
#pragma once

#include <cstdint>
#include <filesystem>

#include "asg/params.h"
#include "asg/stages/batch_source.h"
#include "asg/stages/recorder.h"
#include "asg/trainer.h"

namespace asg {

struct TrainLoopOptions {
  int64_t steps = 0;
  int64_t log_every = 25;
  int64_t checkpoint_every = 0;  // 0 = only the final checkpoint
  bool log_grad_norm = false;
  static TrainLoopOptions from(const Params& train);
};

class TrainLoop {
 public:
  TrainLoop(DiffusionTrainer& trainer, BatchSource& batches, RunRecorder& recorder, TrainLoopOptions options);
  // Trains steps start_step + 1 ... steps and writes checkpoints/final.pt (returned). `position` is the
  // data position at start_step (what a resumed checkpoint held; empty for a fresh run). On SIGINT/SIGTERM
  // between steps it saves checkpoints/step_<last>.pt first, then rethrows.
  std::filesystem::path run(int64_t start_step, DataPosition position);

 private:
  std::filesystem::path checkpoint_path(int64_t step) const;
  DiffusionTrainer& trainer_;
  BatchSource& batches_;
  RunRecorder& recorder_;
  TrainLoopOptions options_;
};

}  // namespace asg
