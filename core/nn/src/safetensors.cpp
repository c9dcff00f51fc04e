#include "asg/nn/safetensors.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "asg/error.h"

namespace asg::nn {
namespace {

// The header may not exceed 100 MB (the format's own limit): a larger length is a corrupt or foreign file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};
constexpr std::array<DtypeName, 15> kDtypes{{
    {"F64", torch::kFloat64},     {"F32", torch::kFloat32},       {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16},   {"I64", torch::kInt64},         {"I32", torch::kInt32},
    {"I16", torch::kInt16},       {"I8", torch::kInt8},           {"U8", torch::kUInt8},
    {"U16", torch::kUInt16},      {"U32", torch::kUInt32},        {"U64", torch::kUInt64},
    {"BOOL", torch::kBool},       {"F8_E4M3", torch::kFloat8_e4m3fn}, {"F8_E5M2", torch::kFloat8_e5m2},
}};

std::string valid_dtype_names() {
  std::string out;
  for (const auto& d : kDtypes) out += (out.empty() ? "" : ", ") + std::string(d.name);
  return out;
}

torch::ScalarType dtype_from_name(const std::string& name, const std::filesystem::path& file, const std::string& key) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  throw config_error(fmt::format("{}: tensor '{}' has dtype '{}' (valid: {})", file.string(), key, name, valid_dtype_names()));
}

const char* name_of_dtype(torch::ScalarType type, const std::string& key) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  throw config_error(fmt::format("safetensors cannot store tensor '{}' of dtype {} (valid: {})", key, c10::toString(type),
                                 valid_dtype_names()));
}

struct Entry {
  std::string key;
  torch::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};

struct Header {
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section
};

Header parse_header(std::ifstream& in, const std::filesystem::path& file) {
  const std::string where = file.string();
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(file, ec);
  if (ec) throw config_error(fmt::format("{}: cannot read the file ({})", where, ec.message()));
  if (file_size < 8)
    throw config_error(fmt::format("{}: {} bytes is too short for a safetensors file (8-byte header length, JSON header, data)",
                                   where, file_size));
  unsigned char length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | length_bytes[i];  // little-endian
  if (header_bytes > kMaxHeaderBytes || header_bytes > file_size - 8)
    throw config_error(fmt::format("{}: the header claims {} bytes but the file has {} after the length (not a safetensors "
                                   "file, or a truncated one)",
                                   where, header_bytes, file_size - 8));
  std::string text(header_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_bytes));
  if (!in) throw config_error(fmt::format("{}: cannot read its {}-byte header", where, header_bytes));

  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw config_error(fmt::format("{}: the header is not valid JSON ({}); not a safetensors file?", where, e.what()));
  }
  if (!json.is_object()) throw config_error(fmt::format("{}: the header is not a JSON object (not a safetensors file?)", where));

  Header header;
  header.data_start = 8 + header_bytes;
  const uint64_t data_size = file_size - header.data_start;
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw config_error(fmt::format("{}: '__metadata__' is not an object of strings", where));
      for (const auto& [mkey, mvalue] : value.items()) {
        if (!mvalue.is_string())
          throw config_error(fmt::format("{}: '__metadata__.{}' is not a string (the format allows only strings)", where, mkey));
        header.metadata[mkey] = mvalue.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) {
      return config_error(fmt::format("{}: tensor '{}': {} (expected {{\"dtype\": ..., \"shape\": [...], \"data_offsets\": "
                                      "[begin, end]}})",
                                      where, key, what));
    };
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets"))
      throw bad("the entry lacks dtype, shape or data_offsets");
    if (!value["dtype"].is_string()) throw bad("dtype is not a string");
    Entry e;
    e.key = key;
    e.dtype = dtype_from_name(value["dtype"].get<std::string>(), file, key);
    if (!value["shape"].is_array()) throw bad("shape is not an array");
    uint64_t numel = 1;
    for (const auto& dim : value["shape"]) {
      if (!dim.is_number_unsigned()) throw bad("shape holds something other than non-negative integers");
      const uint64_t d = dim.get<uint64_t>();
      if (d > 0 && numel > (uint64_t{1} << 62) / d) throw bad("the shape's element count overflows");
      numel *= d;
      e.shape.push_back(static_cast<int64_t>(d));
    }
    const auto& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      throw bad("data_offsets is not [begin, end] of non-negative integers");
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    const uint64_t expected = numel * c10::elementSize(e.dtype);
    if (e.end < e.begin || e.end - e.begin != expected)
      throw bad(fmt::format("data_offsets [{}, {}] span {} bytes but {} of shape {} need {}", e.begin, e.end,
                            e.end >= e.begin ? e.end - e.begin : 0, value["dtype"].get<std::string>(),
                            value["shape"].dump(), expected));
    if (e.end > data_size)
      throw bad(fmt::format("data_offsets end at byte {} but the data section has {} (a truncated file)", e.end, data_size));
    header.entries.push_back(std::move(e));
  }
  // Overlapping ranges would alias two tensors' bytes: a corrupt or hostile file.
  std::vector<const Entry*> by_offset;
  for (const auto& e : header.entries)
    if (e.end > e.begin) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      throw config_error(fmt::format("{}: tensors '{}' and '{}' overlap in the data section (a corrupt file)", where,
                                     by_offset[i - 1]->key, by_offset[i]->key));
  return header;
}

std::ifstream open(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw config_error(fmt::format("{}: cannot open the file (does it exist and is it readable?)", file.string()));
  return in;
}

}  // namespace

TensorFile read_safetensors(const std::filesystem::path& file) {
  auto in = open(file);
  Header header = parse_header(in, file);
  TensorFile out;
  out.metadata = std::move(header.metadata);
  for (const Entry& e : header.entries) {
    auto tensor = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    in.seekg(static_cast<std::streamoff>(header.data_start + e.begin));
    in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) throw config_error(fmt::format("{}: cannot read tensor '{}'", file.string(), e.key));
    out.tensors.emplace(e.key, std::move(tensor));
  }
  return out;
}

TensorFile read_safetensors_header(const std::filesystem::path& file) {
  auto in = open(file);
  Header header = parse_header(in, file);
  TensorFile out;
  out.metadata = std::move(header.metadata);
  for (const Entry& e : header.entries)
    out.tensors.emplace(e.key, torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype).device(torch::kMeta)));
  return out;
}

void write_safetensors(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [key, tensor] : tensors) {
    if (key == "__metadata__") throw config_error("safetensors reserves the tensor name '__metadata__'");
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * cpu.element_size();
    header[key] = {{"dtype", name_of_dtype(cpu.scalar_type(), key)},
                   {"shape", cpu.sizes().vec()},
                   {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(cpu));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned, as the reference writer does
  const auto tmp = std::filesystem::path(file.string() + fmt::format(".tmp-{}", ::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw config_error(fmt::format("{}: cannot write (is the directory there and writable?)", file.string()));
    unsigned char length_bytes[8];
    uint64_t n = text.size();
    for (auto& b : length_bytes) b = static_cast<unsigned char>(n & 0xff), n >>= 8;
    out.write(reinterpret_cast<const char*>(length_bytes), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : data) out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp);
      throw config_error(fmt::format("{}: writing failed (disk full?)", file.string()));
    }
  }
  std::filesystem::rename(tmp, file);
}

}  // namespace asg::nn
