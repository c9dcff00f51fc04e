// Text files read whole, and written atomically (a temporary file renamed over the target). Torch-free.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace asg {

std::string read_text_file(const std::filesystem::path& path);  // asg::Error(Data) on failure
// Writes via a temporary file and rename, so readers never see a half-written file.
void write_text_file_atomic(const std::filesystem::path& path, std::string_view text);

}  // namespace asg
