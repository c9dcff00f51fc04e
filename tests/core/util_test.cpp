// Small torch-free helpers of the SDK (asg/util.h).
#include "asg/util.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

TEST(KeepFreedMemoryForReuse, SetsBothThresholdsWhenTheUserDidNot) {
  for (const char* name : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"}) unsetenv(name);
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer brings its own allocator, whose mallopt accepts nothing: the line must say so.
  EXPECT_EQ(asg::keep_freed_memory_for_reuse(), "malloc: could not set the trim and mmap thresholds; glibc defaults apply");
#else
  // mallopt refuses values out of range (an mmap threshold above 32 MiB on 64-bit): the line would say so.
  EXPECT_EQ(asg::keep_freed_memory_for_reuse(),
            "malloc: freed memory kept for reuse (trim threshold 1 GiB, mmap threshold 32 MiB)");
#endif
}

TEST(KeepFreedMemoryForReuse, LeavesMallocAloneWhenTheEnvironmentTunedIt) {
  setenv("MALLOC_MMAP_THRESHOLD_", "65536", 1);
  const std::string line = asg::keep_freed_memory_for_reuse();
  unsetenv("MALLOC_MMAP_THRESHOLD_");
  EXPECT_NE(line.find("left as tuned by the environment (MALLOC_MMAP_THRESHOLD_ is set)"), std::string::npos) << line;
}

}  // namespace
