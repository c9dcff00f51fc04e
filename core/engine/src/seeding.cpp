// derive_seed and ScopedGlobalSeed.
#include "asg/seeding.h"

#include <ATen/CPUGeneratorImpl.h>

#include "asg/hash.h"

namespace asg {

uint64_t derive_seed(uint64_t seed, const std::string& tag) {
  // The splitmix64 mix of seed + golden * (FNV-1a(tag) | 1); splitmix64 adds one golden increment itself,
  // hence (h | 1) - 1 = h & ~1 here (mod 2^64, the same value the seeds of every recorded run came from).
  const uint64_t h = fnv1a64(tag, kAsgSeedFnvBasis);
  return splitmix64(seed + 0x9e3779b97f4a7c15ull * (h & ~1ull)) & 0x7fffffffffffffffull;  // torch seeds are signed
}

ScopedGlobalSeed::ScopedGlobalSeed(uint64_t seed) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  saved_state_ = generator.get_state();
  generator.set_current_seed(seed);
}

ScopedGlobalSeed::~ScopedGlobalSeed() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(saved_state_);
}

}  // namespace asg
