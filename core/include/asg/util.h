// Small helpers without torch: hashing, fuzzy name matching, text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asg {

// Lower-case hex sha256 (OpenSSL libcrypto).
std::string sha256_hex(std::string_view bytes);
// sha256 of a file's contents; asg::Error(Data) naming the file if it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

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

}  // namespace asg
