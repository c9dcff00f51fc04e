// Benchmark: the two backbones, dit and unet3d, at matched parameter counts: the training step's time
// (DiffusionTrainer::step: forward, backward, AdamW, EMA) and the peak resident memory of a process that
// trains it. dit's width is chosen so that its parameter count is the closest to unet3d's (defaults,
// temporal module `none`, so the backbones alone are compared). Each side runs in a child process (this
// binary with --child), so each peak RSS is its own; the ratio dit / unet3d is printed for both.
//
//   asg_bench_backbones [--size N] [--frames N] [--batch N] [--steps N] [--threads N]
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "asg/kinds/backbone.h"
#include "asg/plugin_catalog.h"
#include "asg/trainer.h"
#include "asg/allocator.h"
#include "bench_args.h"
#include "hand_written.h"

namespace {

struct Shape {
  int64_t size, frames;
};

std::shared_ptr<asg::Backbone> make_backbone(asg::PluginCatalog& catalog, const std::string& name, int64_t dit_width,
                                             const Shape& shape, int64_t text_dim) {
  asg::BackboneContext ctx;
  ctx.channels = 4;
  ctx.frames = shape.frames;
  ctx.height = ctx.width = shape.size;
  ctx.text_dim = text_dim;
  ctx.make_temporal = [&catalog](const asg::TemporalContext& tc) {
    return catalog.create<asg::TemporalModule>("none", asg::bench::defaults(catalog, "temporal", "none"), tc);
  };
  auto values = asg::bench::defaults(catalog, "backbone", name).values();
  if (name == "dit") values["width"] = dit_width;
  return catalog.create<asg::Backbone>(name, asg::Params(name, values), ctx);
}

int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// The child: train `steps` steps after 3 of warm-up; one JSON line with the median step time, the peak
// RSS and the parameter count.
int child(const std::string& name, int64_t dit_width, const Shape& shape, int64_t batch, int steps) {
  auto catalog = asg::PluginCatalog::discover();
  torch::manual_seed(0);
  auto text = catalog.create<asg::TextEncoder>("word_embedding", asg::bench::defaults(catalog, "text_encoder", "word_embedding"));
  auto backbone = make_backbone(catalog, name, dit_width, shape, text->dim());
  const int64_t params = parameter_count(*backbone);
  asg::TrainOptions options;
  options.ema_decay = 0.995;
  options.grad_clip = 1.0;
  asg::DiffusionTrainer trainer(text, backbone, asg::NoiseSchedule("cosine", 1000, asg::Prediction::V), options,
                                torch::Device(torch::kCPU), 7);
  auto x0 = torch::rand({batch, 4, shape.frames, shape.size, shape.size}) * 2 - 1;
  std::vector<std::string> captions(static_cast<size_t>(batch), "a red star moves from left to right");
  for (int i = 0; i < 3; ++i) trainer.step(x0, captions);
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    trainer.step(x0, captions);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  fmt::print("{}\n", nlohmann::json{{"step_ms", asg::bench::median(ms)}, {"peak_rss_mib", usage.ru_maxrss / 1024.0}, {"params", params}}.dump());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string child_of;
  int64_t child_width = 0;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--child") && i + 2 < argc) {
      child_of = argv[++i];
      child_width = std::stoll(argv[++i]);
    } else {
      rest.push_back(argv[i]);
    }
  }
  asg::bench::BenchArgs args({{"size", 16, 4}, {"frames", 8, 1}, {"batch", 8, 1}, {"steps", 8, 1}, {"threads", 0, 0}});
  if (!args.parse(static_cast<int>(rest.size()), rest.data())) return 2;
  if (args["threads"] > 0) torch::set_num_threads(args["threads"]);
  asg::keep_freed_memory_for_reuse();  // as `asg run` does
  const Shape shape{args["size"], args["frames"]};
  if (!child_of.empty()) return child(child_of, child_width, shape, args["batch"], args["steps"]);

  // dit's width (a multiple of its 4 heads) whose parameter count is closest to unet3d's.
  auto catalog = asg::PluginCatalog::discover();
  const int64_t text_dim = 64;  // word_embedding's default
  const int64_t target = parameter_count(*make_backbone(catalog, "unet3d", 0, shape, text_dim));
  int64_t best_width = 8, best_gap = INT64_MAX;
  for (int64_t width = 8; width <= 1024; width += 4) {
    const int64_t gap = std::llabs(parameter_count(*make_backbone(catalog, "dit", width, shape, text_dim)) - target);
    if (gap < best_gap) best_gap = gap, best_width = width;
    else if (gap > best_gap * 2) break;  // the count grows with the width: past the closest
  }

  auto run_child = [&](const std::string& name) {
    const std::string cmd = fmt::format("{} --child {} {} --size {} --frames {} --batch {} --steps {} --threads {}", argv[0], name,
                                        best_width, shape.size, shape.frames, args["batch"], args["steps"], args["threads"]);
    std::string out;
    if (FILE* pipe = popen(cmd.c_str(), "r")) {
      char buf[512];
      while (fgets(buf, sizeof buf, pipe)) out += buf;
      if (pclose(pipe) != 0) out.clear();
    }
    if (out.empty()) throw std::runtime_error("child failed: " + cmd);
    return nlohmann::json::parse(out.substr(out.rfind('{')));
  };
  const auto unet = run_child("unet3d"), dit = run_child("dit");
  fmt::print("backbones at matched parameter counts: batch {} x 4 x {} x {}x{}, temporal module none, {} timed steps each, "
             "{} threads\n",
             args["batch"], shape.frames, shape.size, shape.size, args["steps"],
             args["threads"] > 0 ? args["threads"] : static_cast<int>(torch::get_num_threads()));
  fmt::print("  {:<28} {:>12} {:>14} {:>14}\n", "backbone", "parameters", "step (median)", "peak RSS");
  fmt::print("  {:<28} {:>12} {:>11.1f} ms {:>10.0f} MiB\n", "unet3d (defaults)", unet["params"].get<int64_t>(),
             unet["step_ms"].get<double>(), unet["peak_rss_mib"].get<double>());
  fmt::print("  {:<28} {:>12} {:>11.1f} ms {:>10.0f} MiB\n", fmt::format("dit (width {}, defaults)", best_width),
             dit["params"].get<int64_t>(), dit["step_ms"].get<double>(), dit["peak_rss_mib"].get<double>());
  fmt::print("  ratio dit / unet3d: step time {:.2f}x, peak RSS {:.2f}x, parameters {:.3f}x\n",
             dit["step_ms"].get<double>() / unet["step_ms"].get<double>(),
             dit["peak_rss_mib"].get<double>() / unet["peak_rss_mib"].get<double>(),
             static_cast<double>(dit["params"].get<int64_t>()) / static_cast<double>(unet["params"].get<int64_t>()));
  return 0;
}
