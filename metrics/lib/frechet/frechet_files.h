// `asg fd`: the Fréchet distance between two feature matrices saved by numpy. Torch-free header, so the CLI
// does not compile LibTorch's headers for it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace asg::frechet {

struct FilesDistance {
  int64_t rows_a = 0, rows_b = 0, dim = 0;
  double value = 0, mean_term = 0, trace_term = 0;
  double eps = 0;  // > 0 when the retry offset was needed
};

// covariance: "unbiased" or "biased". asg::Error(Data) naming the file for an unreadable or non-finite
// matrix, too few rows, or features of different dimensions.
FilesDistance frechet_distance_of_files(const std::filesystem::path& a, const std::filesystem::path& b,
                                        const std::string& covariance);

}  // namespace asg::frechet
