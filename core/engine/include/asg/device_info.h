// What a run's compute device is and how much memory the run used on it, for the run record. The CUDA
// parts read LibTorch's CUDA allocator and device properties, so they exist only in builds that compile
// the CUDA path (ASG_WITH_CUDA); elsewhere a CUDA device is described by its index alone.
#pragma once

#include <c10/core/Device.h>

#include <optional>
#include <string>

namespace asg {

struct MemoryPeaks {
  double resident_mib = 0;                          // the process's peak resident set (CPU memory)
  std::optional<double> device_allocated_mib;       // CUDA: peak bytes held by tensors
  std::optional<double> device_reserved_mib;        // CUDA: peak bytes the caching allocator held
};

// e.g. "NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB"; "cpu" for the CPU.
std::string device_description(const c10::Device& device);
// Peaks since the process started (one run per process: `asg run`, and each sweep point in its own).
MemoryPeaks memory_peaks(const c10::Device& device);

}  // namespace asg
