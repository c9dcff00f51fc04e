// Feature extractors from user-supplied TorchScript files with a reference interface (the StyleGAN-V I3D for
// FVD, NVIDIA's Inception for FID), and the sticker-to-video preprocessing they share. Pretrained weights
// cannot be downloaded here: a run names the file and its sha256, and scripts/fixtures/
// write_extractor_torchscript.py writes random-weight files with the same interfaces for the tests.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "asg/kinds/dataset.h"

namespace asg::metrics {

class TorchScriptExtractor {
 public:
  // Loads `file` (sha256 checked: both hashes in the refusal), checks that forward() takes every argument
  // named in `keyword_arguments`, and moves it to `device`. asg::Error(Config) naming the file and
  // `interface` (the expected signature) otherwise.
  TorchScriptExtractor(const std::filesystem::path& file, const std::string& sha256, std::string what, std::string interface,
                       std::map<std::string, bool> keyword_arguments, torch::Device device);

  // forward(input, **keyword_arguments) under inference mode, in chunks of `batch_size` along dimension 0:
  // float64 CPU features [N, d]. asg::Error(Config) naming the file when the output is not [N, d] with the
  // same d for every chunk.
  torch::Tensor features(const torch::Tensor& input, int64_t batch_size);

  const std::filesystem::path& file() const { return file_; }
  torch::Device device() const { return device_; }

 private:
  std::filesystem::path file_;
  std::string what_, interface_;
  std::map<std::string, bool> keyword_arguments_;
  torch::Device device_;
  torch::jit::script::Module module_;
  int64_t dim_ = -1;
};

// A sticker as the protocol's video: its real frames (frame_valid) looped from the first as often as needed
// and sampled every `stride`-th, `frames` of them (the same rule for real and generated clips, so a short
// sticker never differs from a long one by padding), composited over `background` (RGB, 0-255) and
// quantised to the uint8 values a decoded video holds: float [3, frames, H, W] in [0, 255].
torch::Tensor protocol_video(const torch::Tensor& clip, int64_t valid_frames, int64_t frames, int64_t stride,
                             const std::array<double, 3>& background);

// How many real frames a sticker has (frame_valid, or all of them).
int64_t valid_frame_count(const Sticker& sticker);

// `background` parameter values (0-255 ints) as the array protocol_video takes.
std::array<double, 3> background_rgb(const std::vector<int64_t>& values);

}  // namespace asg::metrics
