// asg::nn's safetensors reader and writer: files the Python package writes read back bit for bit, files we
// write read in Python, and malformed files are refused naming the file and the tensor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "asg/error.h"
#include "asg/nn/safetensors.h"
#include "test_paths.h"

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    return e.what();
  }
  return "(no error)";
}

// A file with `header` as its JSON header and `data_bytes` zero bytes after it.
std::filesystem::path raw_file(const std::filesystem::path& dir, const std::string& header, size_t data_bytes) {
  auto path = dir / "raw.safetensors";
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
  return path;
}

TEST(Safetensors, RoundTripsEveryDtypeWithMetadataAndReadsTheHeaderAlone) {
  const auto dir = asg::testing::make_temp_dir("safetensors");
  std::map<std::string, torch::Tensor> tensors = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(7)},
      {"u8", torch::arange(9, torch::kUInt8)},
      {"flag", torch::tensor({true, false})},
      {"scalar", torch::tensor(2.5)},
      {"empty", torch::zeros({0, 3})},
      {"strided", torch::randn({4, 6}).t()},  // not contiguous: written contiguous
  };
  asg::nn::write_safetensors(dir / "a.safetensors", tensors, {{"format", "pt"}, {"source_sha256", "abc"}});
  auto back = asg::nn::read_safetensors(dir / "a.safetensors");
  EXPECT_EQ(back.metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"source_sha256", "abc"}}));
  ASSERT_EQ(back.tensors.size(), tensors.size());
  for (const auto& [key, t] : tensors) {
    EXPECT_EQ(back.tensors[key].scalar_type(), t.scalar_type()) << key;
    EXPECT_TRUE(torch::equal(back.tensors[key], t)) << key;
  }
  auto header = asg::nn::read_safetensors_header(dir / "a.safetensors");
  EXPECT_EQ(header.tensors["f32"].sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(header.tensors["f32"].is_meta());
  std::filesystem::remove_all(dir);
}

TEST(Safetensors, ReadsWhatThePythonPackageWritesAndWritesWhatItReads) {
  const auto dir = asg::testing::make_temp_dir("safetensors-python");
  const std::string script =
      "import sys, torch\n"
      "from safetensors.torch import save_file, load_file\n"
      "d = sys.argv[1]\n"
      "save_file({'w': torch.arange(12, dtype=torch.float32).reshape(3, 4), 'h': torch.tensor([1.5], dtype=torch.float16)},"
      " d + '/py.safetensors', metadata={'who': 'python'})\n"
      "t = load_file(d + '/cpp.safetensors')\n"
      "assert torch.equal(t['x'], torch.arange(6, dtype=torch.int32).reshape(2, 3)), t\n";
  asg::nn::write_safetensors(dir / "cpp.safetensors", {{"x", torch::arange(6, torch::kInt32).reshape({2, 3})}});
  std::ofstream(dir / "check.py") << script;
  ASSERT_EQ(std::system((asg::testing::python() + " " + (dir / "check.py").string() + " " + dir.string()).c_str()), 0);
  auto py = asg::nn::read_safetensors(dir / "py.safetensors");
  EXPECT_EQ(py.metadata.at("who"), "python");
  EXPECT_TRUE(torch::equal(py.tensors.at("w"), torch::arange(12, torch::kFloat32).reshape({3, 4})));
  EXPECT_EQ(py.tensors.at("h").scalar_type(), torch::kFloat16);
  std::filesystem::remove_all(dir);
}

TEST(Safetensors, RefusesMalformedFilesNamingTheFileAndTheTensor) {
  const auto dir = asg::testing::make_temp_dir("safetensors-bad");
  const std::string f = (dir / "raw.safetensors").string();
  EXPECT_EQ(error_of([&] { asg::nn::read_safetensors(dir / "absent.safetensors"); }),
            (dir / "absent.safetensors").string() + ": cannot open the file (does it exist and is it readable?)");
  {
    std::ofstream(dir / "short.safetensors") << "abc";
    EXPECT_EQ(error_of([&] { asg::nn::read_safetensors(dir / "short.safetensors"); }),
              (dir / "short.safetensors").string() +
                  ": 3 bytes is too short for a safetensors file (8-byte header length, JSON header, data)");
  }
  raw_file(dir, "{not json", 0);
  EXPECT_NE(error_of([&] { asg::nn::read_safetensors(f); }).find(f + ": the header is not valid JSON"), std::string::npos);
  raw_file(dir, R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})", 8);  // truncated data
  EXPECT_EQ(error_of([&] { asg::nn::read_safetensors(f); }),
            f + ": tensor 'w': data_offsets end at byte 16 but the data section has 8 (a truncated file) (expected "
                "{\"dtype\": ..., \"shape\": [...], \"data_offsets\": [begin, end]})");
  raw_file(dir, R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}})", 16);  // size mismatch
  EXPECT_NE(error_of([&] { asg::nn::read_safetensors(f); }).find("tensor 'w': data_offsets [0, 16] span 16 bytes but F32 of shape [3] need 12"),
            std::string::npos);
  raw_file(dir, R"({"w": {"dtype": "F31", "shape": [1], "data_offsets": [0, 4]}})", 4);
  EXPECT_NE(error_of([&] { asg::nn::read_safetensors(f); }).find("tensor 'w' has dtype 'F31' (valid: F64, F32, F16, BF16"),
            std::string::npos);
  raw_file(dir, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12);
  EXPECT_EQ(error_of([&] { asg::nn::read_safetensors(f); }), f + ": tensors 'a' and 'b' overlap in the data section (a corrupt file)");
  raw_file(dir, R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4);
  EXPECT_NE(error_of([&] { asg::nn::read_safetensors(f); }).find("shape holds something other than non-negative integers"), std::string::npos);
  raw_file(dir, R"({"__metadata__": {"n": 3}})", 0);
  EXPECT_EQ(error_of([&] { asg::nn::read_safetensors(f); }), f + ": '__metadata__.n' is not a string (the format allows only strings)");
  {
    std::ofstream out(f, std::ios::binary);
    out << std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) << "{}";
  }
  EXPECT_NE(error_of([&] { asg::nn::read_safetensors(f); }).find("the header claims"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
