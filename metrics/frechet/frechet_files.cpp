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
  auto stats_of = [&](const torch::Tensor& x, const std::filesystem::path& file) {
    FeatureMoments moments;
    moments.add(x, file.string() + ": row", 0);
    try {
      return moments.stats(convention);
    } catch (const Error& e) {
      throw data_error(fmt::format("{}: {}", file.string(), e.what()));
    }
  };
  const FrechetResult r = frechet(stats_of(fa, a), stats_of(fb, b));
  return FilesDistance{fa.size(0), fb.size(0), fa.size(1), r.value, r.mean_term, r.trace_term, r.eps};
}

}  // namespace asg::frechet
