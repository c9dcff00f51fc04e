#include "asg/device_info.h"

#include <fmt/format.h>
#include <sys/resource.h>

#ifdef ASG_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace asg {

namespace {
constexpr double kMiB = 1024.0 * 1024.0;
}

std::string device_description(const c10::Device& device) {
  if (!device.is_cuda()) return device.str();
#ifdef ASG_WITH_CUDA
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index());
  return fmt::format("{}, sm_{}{}, {:.1f} GiB", p->name, p->major, p->minor,
                     static_cast<double>(p->totalGlobalMem) / (1024.0 * kMiB));
#else
  return device.str() + " (this build does not compile the CUDA path: no device properties)";
#endif
}

MemoryPeaks memory_peaks(const c10::Device& device) {
  MemoryPeaks peaks;
  struct rusage usage {};
  if (getrusage(RUSAGE_SELF, &usage) == 0) peaks.resident_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
#ifdef ASG_WITH_CUDA
  if (device.is_cuda()) {
    using c10::CachingDeviceAllocator::StatType;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    const auto aggregate = static_cast<size_t>(StatType::AGGREGATE);
    peaks.device_allocated_mib = static_cast<double>(stats.allocated_bytes[aggregate].peak) / kMiB;
    peaks.device_reserved_mib = static_cast<double>(stats.reserved_bytes[aggregate].peak) / kMiB;
  }
#else
  (void)device;
#endif
  return peaks;
}

}  // namespace asg
