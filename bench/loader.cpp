// Benchmark: the sticker loader's decode + transform throughput (samples/s) against the same work done
// in Python with PIL (bench/python/loader_pil.py, the reference environment's PIL), on the same generated files.
//
// Both sides: decode every frame of an animated GIF or WebP (128x128, transparency, 24 frames), pick 8
// frames uniformly, composite over white, area-resize to 64x64, produce float32 in [0, 1]. Targets (issue
// 7): >= 3x PIL per thread, and scaling to both cores (the thread-scaling ratio near the core count).
// The two sides' mean pixel values must agree (to 1e-3): otherwise they do not do the same work and the
// run fails instead of printing ratios.
//
//   asg_bench_loader [--stickers N] [--source-frames N] [--canvas N] [--rounds N] [--threads N] [--webp-percent P] [--python PATH]
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "asg/media/gif.h"
#include "asg/media/sticker_file.h"
#include "asg/media/transform.h"
#include "asg/allocator.h"
#include "bench_args.h"

namespace fs = std::filesystem;

namespace {

// A sticker that exercises what real ones have: a moving opaque blob with soft colour, a transparent
// background, some frames that change only part of the canvas.
asg::Animation make_sticker(int canvas, int frames, int variant) {
  asg::Animation a;
  a.width = a.height = canvas;
  for (int t = 0; t < frames; ++t) {
    asg::RgbaFrame f;
    f.duration_ms = 60 + 10 * (variant % 5);
    f.rgba.assign(static_cast<size_t>(canvas) * canvas * 4, 0);
    const double cx = canvas * (0.3 + 0.4 * ((t + variant) % frames) / frames), cy = canvas * (0.5 + 0.2 * std::sin(t + variant));
    for (int y = 0; y < canvas; ++y)
      for (int x = 0; x < canvas; ++x) {
        const double d = std::hypot(x - cx, y - cy);
        if (d > canvas * 0.25) continue;
        uint8_t* p = &f.rgba[(static_cast<size_t>(y) * canvas + x) * 4];
        p[0] = static_cast<uint8_t>(40 * (variant % 6) + x / 4);
        p[1] = static_cast<uint8_t>(255 - 2 * y / 3);
        p[2] = static_cast<uint8_t>(90 + (t * 7) % 100);
        p[3] = 255;
      }
    a.frames.push_back(std::move(f));
  }
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"stickers", 48, 1}, {"source-frames", 24, 1}, {"canvas", 128, 16}, {"rounds", 3, 1}, {"webp-percent", 50, 0},
                              {"threads", static_cast<int>(std::max(1u, std::thread::hardware_concurrency())), 1}});
  std::string python = ASG_PYTHON;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--python" && i + 1 < argc) python = argv[++i];
    else rest.push_back(argv[i]);
  }
  if (!args.parse(static_cast<int>(rest.size()), rest.data())) return 2;
  // The loader runs inside `asg run`, which keeps freed memory for reuse: each sample allocates and frees
  // canvases and float frames of up to a few MiB, and with glibc's defaults returning them to the kernel
  // costs a page fault per 4 KiB on the next sample (a third of the loader's time here).
  const std::string malloc_policy = asg::keep_freed_memory_for_reuse();
  const fs::path dir = fs::temp_directory_path() / fmt::format("asg_bench_loader_{}", getpid());
  fs::create_directories(dir);
  std::string manifest;
  std::vector<fs::path> files;
  for (int i = 0; i < args["stickers"]; ++i) {
    const auto sticker = make_sticker(args["canvas"], args["source-frames"], i);
    // Spread the WebP files evenly: sticker i is WebP when the running share crosses the next percent.
    const bool webp = (i + 1) * args["webp-percent"] / 100 > i * args["webp-percent"] / 100;
    const std::string name = fmt::format("{:04}.{}", i, webp ? "webp" : "gif");
    if (webp) asg::write_webp(dir / name, sticker, /*lossless=*/false, 80);
    else asg::write_gif(dir / name, sticker);
    files.push_back(dir / name);
    manifest += nlohmann::json{{"path", name}, {"caption", "x"}}.dump() + "\n";
  }
  std::ofstream(dir / "manifest.jsonl") << manifest;

  asg::SampleTransform transform;  // the defaults: 8 uniform frames, composite over white, stretch, auto filter
  transform.height = transform.width = 64;
  auto load_range = [&](size_t from, size_t to, double* sum) {
    for (size_t i = from; i < to; ++i) {
      const auto sample = asg::load_sample(files[i], {}, transform, i);
      double s = 0;
      const size_t plane = static_cast<size_t>(64 * 64);
      for (int64_t t = 0; t < sample.frames; ++t)
        for (size_t k = 0; k < 3 * plane; ++k) s += sample.rgba[static_cast<size_t>(t) * 4 * plane + k];
      *sum += s / static_cast<double>(sample.frames * 3 * plane);
    }
  };
  auto timed = [&](int threads, double* mean) {
    std::vector<double> times;
    for (int r = 0; r < args["rounds"]; ++r) {
      std::vector<double> sums(static_cast<size_t>(threads), 0);
      std::vector<std::thread> pool;
      const auto start = std::chrono::steady_clock::now();
      for (int t = 0; t < threads; ++t)
        pool.emplace_back(load_range, files.size() * t / threads, files.size() * (t + 1) / threads, &sums[static_cast<size_t>(t)]);
      for (auto& p : pool) p.join();
      times.push_back(seconds_since(start));
      double total = 0;
      for (double s : sums) total += s;
      *mean = total / static_cast<double>(files.size());
    }
    return static_cast<double>(files.size()) / asg::bench::median(times);
  };

  double cpp_mean = 0;
  const double one = timed(1, &cpp_mean);
  const int threads = args["threads"];
  double threaded_mean = 0;
  const double many = timed(threads, &threaded_mean);

  const std::string cmd = fmt::format("{} {}/bench/python/loader_pil.py --manifest {} --frames 8 --size 64 --rounds {}", python,
                                      ASG_SOURCE_DIR, (dir / "manifest.jsonl").string(), args["rounds"]);
  std::string out;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, pipe)) out += buf;
    if (pclose(pipe) != 0) out.clear();
  }
  fs::remove_all(dir);
  if (out.empty()) {
    fmt::print(stderr, "asg_bench_loader: the PIL side failed ({}); is the reference environment installed (scripts/setup.sh)?\n", cmd);
    return 1;
  }
  const auto py = nlohmann::json::parse(out);
  const double pil = py["samples"].get<double>() / py["seconds"].get<double>();
  const double pil_mean = py["mean"].get<double>();
  if (std::abs(pil_mean - cpp_mean) > 1e-3 || std::abs(threaded_mean - cpp_mean) > 1e-9) {
    fmt::print(stderr, "asg_bench_loader: the sides disagree (mean pixel: C++ {:.6f}, {} threads {:.6f}, PIL {:.6f}); not timing\n",
               cpp_mean, threads, threaded_mean, pil_mean);
    return 1;
  }
  fmt::print("loader: {} stickers ({}x{}, {} frames, {}% WebP, the rest GIF) -> 8 frames, composite over white, 64x64; median of {} "
             "rounds\n",
             files.size(), args["canvas"], args["canvas"], args["source-frames"], args["webp-percent"], args["rounds"]);
  fmt::print("  {} (as `asg run`)\n", malloc_policy);
  fmt::print("  ASG Lab, 1 thread        : {:8.1f} samples/s\n", one);
  fmt::print("  ASG Lab, {} threads       : {:8.1f} samples/s   scaling x{:.2f} (target: near {})\n", threads, many, many / one, threads);
  fmt::print("  PIL (python3), 1 process : {:8.1f} samples/s\n", pil);
  fmt::print("  ratio per thread (ASG Lab / PIL): {:.2f}x  (target >= 3x)   mean pixel agrees: {:.6f} vs {:.6f}\n", one / pil,
             cpp_mean, pil_mean);
  return 0;
}
