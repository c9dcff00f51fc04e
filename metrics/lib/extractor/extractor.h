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
#include "clip_stats.h"

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



// OpenAI CLIP's preprocessing of one RGB frame: Resize(size, bicubic) of the short side (torchvision's long
// side: int(size * long / short)) with Pillow's bicubic (asg/media/pil_resize.h), CenterCrop(size) (offsets int(round((d - size) / 2))),
// /255, then normalised with CLIP's mean (0.48145466, 0.4578275, 0.40821073) and std (0.26862954,
// 0.26130258, 0.27577711). frame: uint8 [H, W, 3]; returns float32 [3, size, size].
torch::Tensor clip_preprocess(const torch::Tensor& frame, int64_t size);

}  // namespace asg::metrics
