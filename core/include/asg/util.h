// Small helpers without torch: fuzzy name matching, text files, the allocator. Hashes are in asg/hash.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "asg/hash.h"  // many users of these helpers also hash

namespace asg {

// Levenshtein edit distance.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `name`, if it is close enough to be a plausible typo.
std::optional<std::string> nearest_match(std::string_view name, const std::vector<std::string>& candidates);
// " Did you mean 'x'?" or "".
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

std::string read_text_file(const std::filesystem::path& path);  // asg::Error(Data) on failure
// Writes via a temporary file and rename, so readers never see a half-written file.
void write_text_file_atomic(const std::filesystem::path& path, std::string_view text);

std::string join(const std::vector<std::string>& parts, std::string_view sep);

// Makes glibc malloc keep freed memory for reuse instead of handing it back to the kernel. A training
// step frees and reallocates the same activation sizes every step; with glibc's adaptive defaults part of
// that memory is unmapped or trimmed and then faulted in (and zeroed) again: measured 1k-20k page faults
// and about 10% of a quickstart step. Settings: trim threshold 1 GiB, mmap threshold 32 MiB (its maximum;
// larger blocks are still mapped per allocation). Leaves malloc alone where the user tuned it
// (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES set). Returns a line for the run log.
std::string keep_freed_memory_for_reuse();

}  // namespace asg
