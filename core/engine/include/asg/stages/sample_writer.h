// The sample-writer stage: sample GIFs, the grid and captions.txt, each recorded as an artifact.
// Host-only (plugins never include it); run_experiment (asg/runner.h) composes the stages.
#pragma once

#include <torch/torch.h>
#include <cstdint>
#include <string>
#include <vector>

#include "asg/stages/recorder.h"

namespace asg {

// The first `save_gifs` samples as GIFs (samples/NNNN_<caption>.gif, upscaled gif_scale times), a grid of
// the first 16 (samples/grid.gif) and samples/captions.txt; each recorded as an artifact.
class SampleWriter {
 public:
  SampleWriter(RunLog& log, int64_t save_gifs, int64_t gif_scale, double fps);
  void add(int64_t index, const torch::Tensor& clip, const std::string& caption);  // clip [T, 4, H, W]
  void finish();

 private:
  RunLog& log_;
  int64_t save_gifs_, gif_scale_;
  int32_t frame_ms_;
  std::vector<torch::Tensor> grid_;
  std::string captions_;
};

}  // namespace asg
