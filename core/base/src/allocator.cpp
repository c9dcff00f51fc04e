// glibc malloc thresholds for training loops.
#include "asg/allocator.h"

#include <malloc.h>

#include <cstdlib>

namespace asg {

std::string keep_freed_memory_for_reuse() {
  for (const char* tuned : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"})
    if (std::getenv(tuned)) return std::string("malloc: left as tuned by the environment (") + tuned + " is set)";
  const bool ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  return ok ? "malloc: freed memory kept for reuse (trim threshold 1 GiB, mmap threshold 32 MiB)"
            : "malloc: could not set the trim and mmap thresholds; glibc defaults apply";
}

}  // namespace asg
