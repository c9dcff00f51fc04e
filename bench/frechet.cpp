// Benchmark: ASG Lab's Fréchet distance on two feature matrices (frechet_of_features, what `asg fd` runs:
// float64; the sample-space route when N <= d, Cholesky or eigh on the moments otherwise) against the route of
// pytorch-fid and clean-fid (numpy.cov + scipy.linalg.sqrtm, bench/python/frechet_scipy.py, run by the
// reference environment's scipy) on the same feature matrices, from features to the number, in the same run. The default
// size is FVD/FID's usual one: d = 2048 features of N = 2048 clips per side.
//
// The features are correlated Gaussians (a random mixing matrix), the shape real extractor features have;
// both sides read them from the same .npy files. The C++ side is timed in two halves around the Python
// rounds, so drift of the machine hits both; medians are compared.
//
//   asg_bench_frechet [--dim 2048] [--samples 2048] [--rounds 3] [--threads 0 (all)] [--check]
// --check exits 1 unless the C++ route is >= 5x faster and within 1e-6 relative of scipy.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "bench_args.h"
#include "frechet.h"
#include "npy.h"

namespace fs = std::filesystem;

namespace {

std::string read_command(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe)) out += buf;
  return pclose(pipe) == 0 ? out : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"dim", 2048, 2}, {"samples", 2048, 2}, {"rounds", 3, 1}, {"threads", 0, 0}});
  if (!args.parse(argc, argv)) return 2;
  const int threads = args["threads"] > 0 ? args["threads"] : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(threads);
  const int64_t d = args["dim"], n = args["samples"];
  const int rounds = args["rounds"];

  torch::manual_seed(0);
  const auto mixing = torch::randn({d, d}, torch::kFloat64) / std::sqrt(static_cast<double>(d));
  const auto real = torch::randn({n, d}, torch::kFloat64).matmul(mixing).to(torch::kFloat32);
  const auto fake = (torch::randn({n, d}, torch::kFloat64).matmul(mixing) * 1.1 + 0.05).to(torch::kFloat32);
  const fs::path dir = fs::temp_directory_path() / fmt::format("asg-bench-frechet-{}", getpid());
  fs::create_directories(dir);
  asg::npy::write_matrix(dir / "real.npy", real);
  asg::npy::write_matrix(dir / "fake.npy", fake);

  // Both sides start from the float32 features as saved and compute in float64.
  const auto real64 = asg::npy::read_matrix(dir / "real.npy"), fake64 = asg::npy::read_matrix(dir / "fake.npy");
  std::vector<double> cpp_seconds;
  double cpp_value = 0;
  auto cpp_rounds = [&](int count) {
    for (int r = 0; r < count; ++r) {
      const auto start = std::chrono::steady_clock::now();
      cpp_value = asg::frechet::frechet_of_features(real64, fake64, asg::frechet::Covariance::Unbiased).value;
      cpp_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  };
  cpp_rounds((rounds + 1) / 2);
  const std::string command = fmt::format(
      "OMP_NUM_THREADS={0} OPENBLAS_NUM_THREADS={0} {5} {1}/bench/python/frechet_scipy.py {2} {3} {4}", threads,
      ASG_SOURCE_DIR, (dir / "real.npy").string(), (dir / "fake.npy").string(), rounds, ASG_PYTHON);
  const std::string python_out = read_command(command);
  cpp_rounds(rounds / 2 + 1);
  fs::remove_all(dir);
  if (python_out.empty()) {
    fmt::print(stderr, "the Python side failed: {}\n(numpy and scipy come from the reference environment, scripts/setup.sh)\n", command);
    return 1;
  }
  const auto py = nlohmann::json::parse(python_out);
  std::vector<double> py_seconds = py["seconds"].get<std::vector<double>>();
  const double py_value = py["value"].get<double>();

  const double cpp_median = asg::bench::median(cpp_seconds), py_median = asg::bench::median(py_seconds);
  const double relative = std::abs(cpp_value - py_value) / std::abs(py_value);
  const double speedup = py_median / cpp_median;
  fmt::print("Fréchet distance, d = {}, N = {} per side, {} threads, {} rounds per side (median)\n", d, n, threads, rounds);
  fmt::print("  scipy route (numpy.cov + sqrtm, pytorch-fid): {:>9.3f} s   FD = {:.10g}\n", py_median, py_value);
  fmt::print("  ASG Lab (frechet_of_features, as asg fd):     {:>9.3f} s   FD = {:.10g}\n", cpp_median, cpp_value);
  fmt::print("  speed-up {:.1f}x, relative difference {:.2e}\n", speedup, relative);
  if (relative > 1e-6) {
    fmt::print(stderr, "the two routes disagree by more than 1e-6 relative\n");
    return 1;
  }
  if (args.check && speedup < 5) {
    fmt::print(stderr, "--check: the speed-up {:.1f}x is below the target 5x\n", speedup);
    return 1;
  }
  return 0;
}
