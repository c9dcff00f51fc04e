// Benchmark: forward + backward time and peak memory of every temporal module, at the quickstart's size
// and at the paper's (8 frames x 32x32 latents x 320 channels, batch 1), as ratios to temporal_conv
// measured in the same run. STI (whose attention resolves to at::scaled_dot_product_attention) is also run
// with naive attention, so that the two backends' time and memory are compared on the same module.
//
// Time: modules are interleaved round by round (machine noise hits all alike); the report is each
// module's median over rounds. Memory: each (module, size) runs once in a child process (this binary
// re-executed), which reports the growth of its peak resident set (VmHWM) over one forward + backward,
// after the module and input exist; a fresh process is the only way to get a per-run peak on the CPU.
//
//   asg_bench_temporal [--rounds N] [--threads N] [--sizes quickstart,paper] [--modules a,b,...] [--no-memory]
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

#include "asg/kinds/temporal.h"
#include "asg/plugin_catalog.h"
#include "bench_args.h"

namespace {

struct Size {
  std::string name;
  int64_t batch, channels, frames, height, width;
};
// "tiny" is for the smoke test only.
const std::vector<Size> kSizes = {{"quickstart", 16, 24, 8, 16, 16}, {"paper", 1, 320, 8, 32, 32}, {"tiny", 2, 16, 8, 8, 8}};

// A variant is a module with parameter overrides, e.g. STI with naive attention.
struct Variant {
  std::string label, module;
  std::map<std::string, asg::ParamValue> overrides;
};

const asg::PluginCatalog& catalog() {
  static const asg::PluginCatalog c = asg::PluginCatalog::discover();
  return c;
}

std::shared_ptr<asg::TemporalModule> make(const Variant& v, const Size& s) {
  torch::manual_seed(0);
  const auto& rec = catalog().find("temporal", v.module);
  auto values = asg::default_params(v.module, rec->factory.params).values();
  for (const auto& [k, val] : v.overrides) values[k] = val;
  return catalog().create<asg::TemporalModule>(v.module, asg::Params(v.module, values),
                                               asg::TemporalContext{"bench", s.channels, s.frames, s.height, s.width});
}

torch::Tensor input(const Size& s) { return torch::randn({s.batch, s.channels, s.frames, s.height, s.width}); }

double forward_backward_ms(asg::TemporalModule& m, const torch::Tensor& x, const torch::Tensor& probe) {
  auto start = std::chrono::steady_clock::now();
  auto y = m.forward(x);
  (y * probe).sum().backward();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

int64_t peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// Child mode: one forward + backward, then print the peak growth in KiB.
int child(const Variant& v, const Size& s) {
  auto m = make(v, s);
  auto x = input(s).requires_grad_(true);
  auto probe = torch::randn_like(x);
  const int64_t before = peak_rss_kib();
  forward_backward_ms(*m, x, probe);
  fmt::print("{}\n", peak_rss_kib() - before);
  return 0;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');) out.push_back(part);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 5, threads = 2;
  bool memory = true;
  std::vector<std::string> sizes = {"quickstart", "paper"}, modules;
  std::string child_variant, child_size;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--rounds") rounds = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--sizes") sizes = split(next());
    else if (a == "--modules") modules = split(next());
    else if (a == "--no-memory") memory = false;
    else if (a == "--child") child_variant = next(), child_size = next();
    else {
      fmt::print(stderr, "usage: {} [--rounds N] [--threads N] [--sizes quickstart,paper] [--modules a,b] [--no-memory]\n", argv[0]);
      return 2;
    }
  }
  torch::set_num_threads(threads);

  std::vector<Variant> variants;
  for (const auto& name : catalog().names("temporal"))
    if (modules.empty() || std::find(modules.begin(), modules.end(), name) != modules.end()) variants.push_back({name, name, {}});
  if (modules.empty() || std::find(modules.begin(), modules.end(), "sti") != modules.end()) {
    for (const bool full_res : {false, true}) {
      const std::string prefix = full_res ? "sti/full-res" : "sti";
      std::map<std::string, asg::ParamValue> base;
      if (full_res) {
        base["downsample"] = false;
        variants.push_back({prefix, "sti", base});
      }
      auto overrides = base;
      overrides["attention_backend"] = std::string("naive");
      variants.push_back({prefix + "/naive-attention", "sti", overrides});
    }
  }
  auto find_size = [](const std::string& name) {
    for (const auto& s : kSizes)
      if (s.name == name) return s;
    throw std::runtime_error("unknown size " + name + " (valid: quickstart, paper, tiny)");
  };
  if (!child_variant.empty()) {
    for (const auto& v : variants)
      if (v.label == child_variant) return child(v, find_size(child_size));
    return 2;
  }

  char self[4096] = {0};
  if (readlink("/proc/self/exe", self, sizeof(self) - 1) < 0) return 1;
  fmt::print("temporal modules, forward + backward; {} threads, {} rounds; torch {}.{}.{}\n", threads, rounds, TORCH_VERSION_MAJOR,
             TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
  for (const auto& size_name : sizes) {
    const Size s = find_size(size_name);
    fmt::print("\n{}: x [{}, {}, {}, {}, {}]\n", s.name, s.batch, s.channels, s.frames, s.height, s.width);
    std::map<std::string, std::vector<double>> times;
    std::map<std::string, std::shared_ptr<asg::TemporalModule>> built;
    for (const auto& v : variants) built[v.label] = make(v, s);
    auto x = input(s).requires_grad_(true);
    auto probe = torch::randn_like(x);
    for (int r = 0; r <= rounds; ++r)  // round 0 warms up
      for (const auto& v : variants) {
        double ms = forward_backward_ms(*built[v.label], x, probe);
        if (r > 0) times[v.label].push_back(ms);
      }
    built.clear();
    std::map<std::string, double> peak_mib;
    if (memory)
      for (const auto& v : variants) {
        std::string cmd = fmt::format("'{}' --threads {} --child '{}' '{}'", self, threads, v.label, s.name);
        FILE* pipe = popen(cmd.c_str(), "r");
        char buf[128] = {0};
        bool ok = pipe && fgets(buf, sizeof(buf), pipe);
        int status = pipe ? pclose(pipe) : -1;
        peak_mib[v.label] = ok && status == 0 ? std::atof(buf) / 1024.0 : -1;
      }
    const double base_ms = asg::bench::median(times["temporal_conv"]);
    const double base_mib = peak_mib.count("temporal_conv") ? peak_mib["temporal_conv"] : 0;
    fmt::print("{:<30} {:>12} {:>10} {:>14} {:>10}\n", "module", "median ms", "x conv", "peak MiB", "x conv");
    for (const auto& v : variants) {
      double ms = asg::bench::median(times[v.label]);
      std::string mib = memory ? (peak_mib[v.label] < 0 ? "failed" : fmt::format("{:.1f}", peak_mib[v.label])) : "-";
      std::string mib_ratio = memory && base_mib > 0 && peak_mib[v.label] >= 0 ? fmt::format("{:.2f}", peak_mib[v.label] / base_mib) : "-";
      fmt::print("{:<30} {:>12.2f} {:>10.2f} {:>14} {:>10}\n", v.label, ms, base_ms > 0 ? ms / base_ms : 0.0, mib, mib_ratio);
    }
  }
  return 0;
}
