// Reading and atomically writing text files.
#include "asg/files.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "asg/error.h"

namespace asg {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw data_error(fmt::format("{}: cannot open file", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text_file_atomic(const std::filesystem::path& path, std::string_view text) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw data_error(fmt::format("{}: cannot open for writing", tmp.string()));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    if (!out) throw data_error(fmt::format("{}: write failed", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace asg
