// Hashing, in one place: content hashes (sha256, for provenance: libraries, checkpoints, configs) and
// small non-cryptographic mixers (for seeds and hashing tokens into buckets). No torch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace asg {

// Lower-case hex sha256 (OpenSSL libcrypto).
std::string sha256_hex(std::string_view bytes);
// sha256 of a file's contents; asg::Error(Data) naming the file if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

// 64-bit FNV-1a (prime 1099511628211) from a given offset basis.
inline constexpr uint64_t kFnv1a64Basis = 14695981039346656037ull;  // the published basis
// The basis ASG Lab has used since its first release for run-seed streams (derive_seed) and the word
// embedding's buckets: a digit short of the published one, which nobody noticed in time. It stays,
// because it fixes the data order, initial weights and token ids of every recorded run; FNV-1a mixes as
// well from any basis. New uses take kFnv1a64Basis.
inline constexpr uint64_t kAsgSeedFnvBasis = 1469598103934665603ull;
constexpr uint64_t fnv1a64(std::string_view bytes, uint64_t basis = kFnv1a64Basis) {
  uint64_t h = basis;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The splitmix64 finaliser (Steele, Lea & Flood 2014): adds the golden-ratio increment and mixes.
// Consecutive inputs give statistically independent outputs, so `splitmix64(state)` is a generator and
// `splitmix64(seed ^ stream)` derives independent streams.
constexpr uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace asg
