// Seeds derived from the run seed by tag, and a scope that runs the global generator from one of them.
// Host-only.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace asg {

// splitmix64 of (seed, tag): independent, reproducible seeds for data order, noise, sampling, ...
uint64_t derive_seed(uint64_t seed, const std::string& tag);

// While alive, the global CPU generator (what torch::nn layers draw their initial weights from) runs
// from `seed`; the destructor puts back the exact state it had before. The core wraps the construction
// of every plugin slot (and of every temporal insertion point) in one of these, so that each draws its
// initial weights from its own stream: adding, removing or swapping one slot's module cannot shift the
// weights of any other.
class ScopedGlobalSeed {
 public:
  explicit ScopedGlobalSeed(uint64_t seed);
  ~ScopedGlobalSeed();
  ScopedGlobalSeed(const ScopedGlobalSeed&) = delete;
  ScopedGlobalSeed& operator=(const ScopedGlobalSeed&) = delete;

 private:
  torch::Tensor saved_state_;
};

}  // namespace asg
