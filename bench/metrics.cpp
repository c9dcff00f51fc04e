// Benchmark: the evaluation side of a metric with a feature extractor (fvd through a TorchScript I3D).
// In the same run:
//   1. extraction throughput: clips per second through the extractor at batch 1 and at --batch, under
//      inference mode (the ratio is what batching buys);
//   2. the real-statistics cache: preparing the real side cold (every real clip through the extractor,
//      then the state written to the cache) against warm (the state read back), and a check that both give
//      the same fvd on the same generated clips.
// Pretrained weights cannot be downloaded here: by default the extractor is the random-weight file with the
// StyleGAN-V interface that scripts/fixtures/write_extractor_torchscript.py writes (a much smaller network
// than I3D, so absolute clips/s are not I3D's). ASG_BENCH_I3D=<i3d_torchscript.pt> uses a real file.
//
//   asg_bench_metrics [--clips 64] [--frames 8] [--size 64] [--batch 16] [--threads 0]
#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "asg/hash.h"
#include "asg/plugin_catalog.h"
#include "asg/stages/evaluator.h"
#include "bench_args.h"
#include "extractor.h"

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"clips", 64, 2}, {"frames", 8, 1}, {"size", 64, 8}, {"batch", 16, 1}, {"threads", 0, 0}});
  if (!args.parse(argc, argv)) return 2;
  if (args["threads"] > 0) torch::set_num_threads(args["threads"]);
  const fs::path dir = fs::temp_directory_path() / fmt::format("asg-bench-metrics-{}", getpid());
  fs::create_directories(dir);
  fs::path model;
  if (const char* env = std::getenv("ASG_BENCH_I3D")) {
    model = env;
  } else {
    model = dir / "i3d.pt";
    const std::string cmd = fmt::format("{} {}/scripts/fixtures/write_extractor_torchscript.py {} --kind i3d", ASG_PYTHON,
                                        ASG_SOURCE_DIR, model.string());
    if (std::system(cmd.c_str()) != 0) {
      fmt::print(stderr, "could not write the I3D-interface fixture ({}); the reference environment comes from scripts/setup.sh\n", cmd);
      return 1;
    }
  }
  const std::string sha = asg::sha256_file(model);
  const int64_t n = args["clips"], t = args["frames"], size = args["size"];
  torch::manual_seed(0);
  std::vector<asg::Sticker> real;
  for (int64_t i = 0; i < n; ++i) real.push_back(asg::Sticker{std::to_string(i), torch::rand({t, 4, size, size}), {}, "", {}, {}});
  const auto generated = torch::rand({n, t, 4, size, size});

  // 1. Extraction throughput.
  asg::metrics::TorchScriptExtractor i3d(model, sha, "I3D feature extractor", "forward(x, rescale, resize, return_features)",
                                         {{"rescale", true}, {"resize", true}, {"return_features", true}}, torch::kCPU);
  std::vector<torch::Tensor> videos;
  for (const auto& s : real) videos.push_back(asg::metrics::protocol_video(s.frames, t, 16, 1, {1, 1, 1}));
  const auto batch = torch::stack(videos);
  (void)i3d.features(batch.slice(0, 0, 2), 2);  // warm-up
  auto start = std::chrono::steady_clock::now();
  (void)i3d.features(batch, 1);
  const double one = static_cast<double>(n) / seconds_since(start);
  start = std::chrono::steady_clock::now();
  (void)i3d.features(batch, args["batch"]);
  const double batched = static_cast<double>(n) / seconds_since(start);
  fmt::print("extractor {} ({} threads), {} clips of 16 frames at {}x{}:\n", model.filename().string(), torch::get_num_threads(),
             n, size, size);
  fmt::print("  batch 1: {:.2f} clips/s   batch {}: {:.2f} clips/s   ratio {:.2f}x\n", one, args["batch"], batched,
             batched / one);

  // 2. Cold against warm real side, through the fvd plugin as a run uses it.
  auto catalog = asg::PluginCatalog::discover();
  const asg::Params params("fvd", {{"model", model.string()},
                                   {"sha256", sha},
                                   {"frames", int64_t{16}},
                                   {"stride", int64_t{1}},
                                   {"background", std::vector<int64_t>{255, 255, 255}},
                                   {"covariance", std::string("biased")},
                                   {"batch_size", static_cast<int64_t>(args["batch"])}});
  const asg::MetricContext ctx{asg::DatasetInfo{t, size, size, 8.0, {}, {}}, "bench", torch::kCPU};
  asg::StatisticsCache cache(dir / "cache");
  auto cold = catalog.create<asg::Metric>("fvd", params, ctx);
  start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; i += args["batch"])
    cold->update_real(std::vector<asg::Sticker>(real.begin() + i, real.begin() + std::min<int64_t>(n, i + args["batch"])), i);
  cache.store("bench", cold->real_state(), "{}");
  const double cold_s = seconds_since(start);
  auto warm = catalog.create<asg::Metric>("fvd", params, ctx);
  start = std::chrono::steady_clock::now();
  warm->load_real_state(*cache.load("bench"));
  const double warm_s = seconds_since(start);
  cold->update(generated, real, 0);
  warm->update(generated, real, 0);
  const double cold_fvd = cold->result()[0].value, warm_fvd = warm->result()[0].value;
  fmt::print("real side of fvd over {} clips: cold (extract + store) {:.3f} s, warm (load) {:.4f} s, ratio {:.0f}x; "
             "fvd {:.6g} both ways: {}\n",
             n, cold_s, warm_s, cold_s / warm_s, cold_fvd, cold_fvd == warm_fvd ? "yes" : "NO");
  fs::remove_all(dir);
  return cold_fvd == warm_fvd ? 0 : 1;
}
