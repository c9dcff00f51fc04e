#include "frechet_files.h"

#include <fmt/format.h>

#include "asg/error.h"
#include "frechet.h"
#include "npy.h"

namespace asg::frechet {

FilesDistance frechet_distance_of_files(const std::filesystem::path& a, const std::filesystem::path& b,
                                        const std::string& covariance) {
  const Covariance convention = parse_covariance(covariance);
  const torch::Tensor fa = npy::read_matrix(a), fb = npy::read_matrix(b);
  if (fa.size(1) != fb.size(1))
    throw data_error(fmt::format("{} has {}-dimensional features but {} has {}-dimensional ones; a Fréchet distance "
                                 "compares features of one extractor",
                                 a.string(), fa.size(1), b.string(), fb.size(1)));
  for (const auto& [rows, file] : {std::pair{fa.size(0), a}, std::pair{fb.size(0), b}})
    if (rows < (convention == Covariance::Unbiased ? 2 : 1))
      throw data_error(fmt::format("{}: {} rows; the {} covariance needs at least {}", file.string(), rows, covariance,
                                   convention == Covariance::Unbiased ? 2 : 1));
  const FrechetResult r = frechet_of_features(fa, fb, convention, a.string() + ":", b.string() + ":");
  return FilesDistance{fa.size(0), fb.size(0), fa.size(1), r.value, r.mean_term, r.trace_term, r.eps};
}

}  // namespace asg::frechet
