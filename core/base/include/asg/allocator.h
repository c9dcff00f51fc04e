// The process's malloc settings for training loops. Torch-free.
#pragma once

#include <string>

namespace asg {

// Makes glibc malloc keep freed memory for reuse instead of handing it back to the kernel. A training
// step frees and reallocates the same activation sizes every step; with glibc's adaptive defaults part of
// that memory is unmapped or trimmed and then faulted in (and zeroed) again: measured 1k-20k page faults
// and about 10% of a quickstart step. Settings: trim threshold 1 GiB, mmap threshold 32 MiB (its maximum;
// larger blocks are still mapped per allocation). Leaves malloc alone where the user tuned it
// (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES set). Returns a line for the run log.
std::string keep_freed_memory_for_reuse();

}  // namespace asg
