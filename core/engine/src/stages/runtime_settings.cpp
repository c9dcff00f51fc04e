#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

#include "asg/device_info.h"
#include "asg/plugin.h"
#include "asg/stages/runtime_settings.h"
#include "asg/allocator.h"

namespace asg {

namespace {

torch::Device resolve_device(const std::string& requested) {
  if (requested == "cpu") return torch::Device(torch::kCPU);
  const bool available = torch::cuda::is_available();
  if (requested == "auto") return available ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  // "cuda" or "cuda:N" (the experiment loader checked the form).
  const int64_t index = requested == "cuda" ? 0 : std::stoll(requested.substr(5));
  if (!available)
    throw config_error(fmt::format("[runtime] device = \"{}\": no CUDA device is available to this build of LibTorch (valid "
                                   "here: \"cpu\", or \"auto\" to use CUDA only when present)",
                                   requested));
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count)
    throw config_error(fmt::format("[runtime] device = \"{}\": this machine has {} CUDA device(s) (valid: cuda:0 to cuda:{})",
                                   requested, count, count - 1));
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// ASG_THREADS: a positive thread count, or nothing when unset. A value that is not one is refused rather than
// silently replaced by every core.
std::optional<int64_t> threads_from_environment() {
  const char* text = std::getenv("ASG_THREADS");
  if (!text || !*text) return std::nullopt;
  char* end = nullptr;
  const long long n = std::strtoll(text, &end, 10);
  if (*end != '\0' || n < 1 || n > 4096)
    throw config_error(fmt::format("ASG_THREADS = \"{}\": expected a thread count from 1 to 4096 (or leave it unset: all cores)", text));
  return n;
}

}  // namespace

RuntimeSettings apply_runtime_settings(const Experiment& exp, std::optional<int64_t> threads_when_unset) {
  RuntimeSettings s;
  s.device = resolve_device(exp.runtime.str("device"));
  s.deterministic = exp.runtime.boolean("deterministic");
  s.threads = exp.runtime.integer("threads");
  // 0 = all cores, or the count of the run this one reruns or continues, or the share a parent process gives this
  // one (asg sweep --jobs N sets ASG_THREADS), so that parallel points split the machine without changing their
  // configs (threads are part of the config hash).
  if (s.threads == 0 && threads_when_unset) s.threads = *threads_when_unset;
  if (s.threads == 0) s.threads = threads_from_environment().value_or(std::max(1u, std::thread::hardware_concurrency()));
  // LibTorch starts with its own default; the run says how many threads it uses, and records it.
  torch::set_num_threads(static_cast<int>(s.threads));
  s.allocator = keep_freed_memory_for_reuse();
  if (s.deterministic) {
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);  // cuBLAS refuses deterministic mode without it
    at::globalContext().setDeterministicAlgorithms(true, false);
    at::globalContext().setDeterministicCuDNN(true);
    at::globalContext().setBenchmarkCuDNN(false);
  }
  return s;
}

std::string environment_json(const RuntimeSettings& settings) {
  nlohmann::json j;
  std::string cpu;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  j["hostname"] = host;
  j["cpu"] = cpu;
  j["cores"] = std::thread::hardware_concurrency();
  j["threads"] = settings.threads;
  j["device"] = settings.device.str();
  if (settings.device.is_cuda()) j["device_name"] = device_description(settings.device);
  j["deterministic"] = settings.deterministic;
  j["allocator"] = settings.allocator;
  j["torch"] = ASG_TORCH_VERSION_STRING;
  j["cuda_available"] = torch::cuda::is_available();
  j["asg_version"] = ASG_VERSION;
  j["asg_plugin_api"] = fmt::format("{}.{}", kPluginApiMajor, kPluginApiMinor);
  return j.dump();
}

}  // namespace asg
