#include "npy.h"

#include <fmt/format.h>

#include <cstring>
#include <regex>
#include <string>

#include "asg/error.h"
#include "asg/files.h"

namespace asg::npy {

namespace {
constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

uint32_t little_endian(const std::string& bytes, size_t at, size_t width) {
  uint32_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + i])) << (8 * i);
  return v;
}
}  // namespace

torch::Tensor read_matrix(const std::filesystem::path& file) {
  const std::string name = file.string();
  const std::string bytes = read_text_file(file);  // asg::Error(Data) naming the file if it cannot be read
  auto bad = [&](const std::string& what) {
    return data_error(fmt::format("{}: {} (expected a 2-D float32 or float64 array as numpy.save writes it: "
                                  "numpy.save(path, features.astype('float32')) with features of shape [N, d])",
                                  name, what));
  };
  if (bytes.size() < kMagicSize + 4 || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) throw bad("not a .npy file");
  const int major = static_cast<uint8_t>(bytes[kMagicSize]);
  if (major < 1 || major > 3) throw bad(fmt::format(".npy format version {} is not one of 1, 2, 3", major));
  const size_t length_width = major == 1 ? 2 : 4;
  const size_t header_start = kMagicSize + 2 + length_width;
  if (bytes.size() < header_start) throw bad("truncated header");
  const size_t header_length = little_endian(bytes, kMagicSize + 2, length_width);
  if (bytes.size() < header_start + header_length) throw bad("truncated header");
  const std::string header = bytes.substr(header_start, header_length);

  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')"))) throw bad("its header has no 'descr'");
  const std::string descr = m[1];
  torch::ScalarType dtype;
  size_t item_size;
  if (descr == "<f4") {
    dtype = torch::kFloat32;
    item_size = 4;
  } else if (descr == "<f8") {
    dtype = torch::kFloat64;
    item_size = 8;
  } else {
    throw bad(fmt::format("dtype '{}' is not little-endian float32 ('<f4') or float64 ('<f8')", descr));
  }
  if (!std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))"))) throw bad("its header has no 'fortran_order'");
  const bool fortran = m[1] == "True";
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) throw bad("its header has no 'shape'");
  std::vector<int64_t> shape;
  const std::string dims = m[1];
  const std::regex number(R"(\d+)");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it)
    shape.push_back(std::stoll(it->str()));
  if (shape.size() != 2) throw bad(fmt::format("shape ({}) is not 2-D", dims));
  const size_t expected = static_cast<size_t>(shape[0]) * static_cast<size_t>(shape[1]) * item_size;
  const size_t data_start = header_start + header_length;
  if (bytes.size() - data_start != expected)
    throw bad(fmt::format("shape ({}, {}) needs {} bytes of data, the file has {}", shape[0], shape[1], expected,
                          bytes.size() - data_start));
  // Fortran order stores the transpose in C order.
  const std::vector<int64_t> stored = fortran ? std::vector<int64_t>{shape[1], shape[0]} : shape;
  torch::Tensor t = torch::empty(stored, dtype);
  if (expected > 0) std::memcpy(t.data_ptr(), bytes.data() + data_start, expected);
  if (fortran) t = t.t();
  return t.to(torch::kFloat64).contiguous();
}

void write_matrix(const std::filesystem::path& file, const torch::Tensor& matrix) {
  if (matrix.dim() != 2 || (matrix.scalar_type() != torch::kFloat32 && matrix.scalar_type() != torch::kFloat64))
    throw internal_error("npy::write_matrix: a 2-D float32 or float64 tensor is needed");
  const auto m = matrix.to(torch::kCPU).contiguous();
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}, {}), }}",
                                   m.scalar_type() == torch::kFloat32 ? "<f4" : "<f8", m.size(0), m.size(1));
  // The data starts at a multiple of 64 bytes; the header ends with a newline.
  const size_t unpadded = kMagicSize + 4 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string bytes(kMagic, kMagicSize);
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>((header.size() >> 8) & 0xff);
  bytes += header;
  bytes.append(static_cast<const char*>(m.data_ptr()), static_cast<size_t>(m.numel()) * m.element_size());
  write_text_file_atomic(file, bytes);
}

}  // namespace asg::npy
