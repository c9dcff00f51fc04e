// The preprocessing the extractor metrics share, against the reference libraries it ports (Pillow, OpenAI
// CLIP's transform), on files scripts/fixtures/pil_resize_reference.py writes.
#include "extractor.h"

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "asg/hash.h"
#include "asg/files.h"
#include "extractor_fixtures.h"
#include "npy.h"
#include "test_paths.h"

namespace {

torch::Tensor raw_image(const std::filesystem::path& file, int64_t h, int64_t w) {
  const std::string bytes = asg::read_text_file(file);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(h * w * 3)) << file;
  return torch::from_blob(const_cast<char*>(bytes.data()), {h, w, 3}, torch::kUInt8).clone();
}

}  // namespace

// Pillow's resampling itself is checked in tests/media/pil_resize_test.cpp.
TEST(ClipPreprocess, MatchesOpenAIsOnPillowsBicubic) {
  const auto dir = asg::testing::make_temp_dir("pil-resize");
  ASSERT_TRUE(asg::testing::write_fixture("pil_resize_reference.py", dir)) << "PIL and numpy: the reference environment, scripts/setup.sh";
  const auto cases = nlohmann::json::parse(asg::read_text_file(dir / "cases.json"))["cases"];
  ASSERT_GE(cases.size(), 5u);
  for (const auto& c : cases) {
    const int64_t h = c["h"], w = c["w"], oh = c["out_h"], ow = c["out_w"];
    SCOPED_TRACE(fmt::format("{}x{} -> {}x{}", h, w, oh, ow));
    const auto in = raw_image(dir / c["in"].get<std::string>(), h, w);
    const auto clip = asg::npy::read_matrix(dir / c["clip"].get<std::string>());  // [3 * 224, 224]
    const auto mine = asg::metrics::clip_preprocess(in, 224).reshape({3 * 224, 224}).to(torch::kFloat64);
    EXPECT_LE((mine - clip).abs().max().item<double>(), 1e-5);
  }
  std::filesystem::remove_all(dir);
}

TEST(ProtocolVideo, ShortStickersLoopFromTheirFirstFrameAndStrideSubsamples) {
  auto clip = torch::zeros({8, 4, 2, 2});
  for (int64_t t = 0; t < 8; ++t) clip[t].narrow(0, 0, 3).fill_(static_cast<double>(t) / 255.0);
  clip.select(1, 3).fill_(1);
  const auto value_at = [](const torch::Tensor& video, int64_t j) { return video[0][j][0][0].item<float>(); };
  const auto looped = asg::metrics::protocol_video(clip, 3, 7, 1, {1, 1, 1});  // 3 real frames -> 0 1 2 0 1 2 0
  for (int64_t j = 0; j < 7; ++j) EXPECT_EQ(value_at(looped, j), static_cast<float>(j % 3)) << j;
  const auto strided = asg::metrics::protocol_video(clip, 8, 4, 2, {1, 1, 1});  // 0 2 4 6
  for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(value_at(strided, j), static_cast<float>(2 * j)) << j;
  // Transparent pixels show the background, quantised to uint8 values.
  clip.select(1, 3).fill_(0);
  EXPECT_EQ(value_at(asg::metrics::protocol_video(clip, 8, 1, 1, {0.5, 0, 0}), 0), 128.0f);
}

// CUDA placement: the file runs on the metric's device, inputs go there chunk by chunk and features come back as
// float64 on the CPU, equal to the CPU's up to float rounding. Needs a GPU: skipped on CPU-only machines (CI).
TEST(TorchScriptExtractor, RunsOnTheMetricsDeviceAndReturnsCpuFloat64) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto file = asg::testing::extractor_fixture("inception");
  const std::map<std::string, bool> kwargs = {{"return_features", true}};
  asg::metrics::TorchScriptExtractor cpu(file, asg::sha256_file(file), "Inception", "test", kwargs, torch::kCPU);
  asg::metrics::TorchScriptExtractor gpu(file, asg::sha256_file(file), "Inception", "test", kwargs, torch::Device("cuda:0"));
  torch::manual_seed(0);
  const auto frames = torch::rand({5, 3, 32, 32}) * 255;
  const auto on_cpu = cpu.features(frames, 2), on_gpu = gpu.features(frames, 2);
  EXPECT_TRUE(on_gpu.device().is_cpu());
  EXPECT_EQ(on_gpu.scalar_type(), torch::kFloat64);
  EXPECT_LE((on_gpu - on_cpu).abs().max().item<double>(), 1e-3 * (1 + on_cpu.abs().max().item<double>()));
}

