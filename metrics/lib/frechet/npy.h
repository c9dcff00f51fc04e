// NumPy .npy files of feature matrices ([N, d], float32 or float64, as numpy.save writes them), so that a
// reviewer can bring another pipeline's features to `asg fd`, and benchmarks can hand data to Python.
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html (versions 1.0, 2.0, 3.0).
#pragma once

#include <torch/torch.h>

#include <filesystem>

namespace asg::npy {

// A 2-D little-endian float32 ('<f4') or float64 ('<f8') array, C or Fortran order, as a float64 [N, d]
// tensor. asg::Error(Data) naming the file and what would be valid for anything else (a 1-D or 3-D array,
// another dtype, a big-endian file, a truncated one).
torch::Tensor read_matrix(const std::filesystem::path& file);

// Writes a 2-D float32 or float64 tensor as a version 1.0 .npy file (C order).
void write_matrix(const std::filesystem::path& file, const torch::Tensor& matrix);

}  // namespace asg::npy
