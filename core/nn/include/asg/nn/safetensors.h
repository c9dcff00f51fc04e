// Reading and writing safetensors files (Hugging Face's tensor format: an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range, then the raw bytes). It is the
// format diffusers and transformers publish weights in, and ASG Lab's imported weight files use it too,
// with provenance in the header's `__metadata__`. Needs torch.
//
// Reading checks everything the header claims against the file (sizes, ranges, overlaps, dtypes) before a
// byte is used, so a truncated or hand-edited file is an asg::Error(Config) naming the file and the
// tensor, never a crash or a silently short tensor.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

namespace asg::nn {

struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;   // CPU, contiguous, in the dtype stored
  std::map<std::string, std::string> metadata;    // the header's "__metadata__" (string -> string)
};

// The whole file; asg::Error(Config) naming `file` (and the tensor) for anything malformed.
TensorFile read_safetensors(const std::filesystem::path& file);

// Only the header: each tensor's dtype and shape, as empty meta tensors (no data is read).
TensorFile read_safetensors_header(const std::filesystem::path& file);

// Writes `tensors` (any device; copied to CPU, made contiguous) and `metadata`, atomically: a reader never
// sees a half-written file. asg::Error(Config) for a dtype safetensors has no name for.
void write_safetensors(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace asg::nn
