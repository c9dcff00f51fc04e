#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/kinds/metric.h"
#include "extractor_fixtures.h"
#include "metric_driver.h"
#include "plugin_under_test.h"
#include "test_clips.h"

using asg::testing::make_under_test;

namespace {

double fid(const torch::Tensor& generated, const std::vector<asg::Sticker>& real) {
  const auto file = asg::testing::extractor_fixture("inception");
  auto m = make_under_test<asg::Metric>("fid", {{"model", file.string()}, {"sha256", asg::sha256_file(file)}},
                                        asg::testing::clip_context(generated.size(1)));
  return asg::testing::metric_results(*m, generated, real)["fid"];
}

}  // namespace

TEST(Fid, EveryRealFrameIsASampleAndPaddingIsNot) {
  torch::manual_seed(0);
  const auto frames = torch::rand({6, 4, 4, 16, 16});
  frames.select(2, 3).fill_(1);
  // The same 24 frames as 6 clips of 4, or as 3 clips of 8 real frames: the same distribution.
  const auto as_eight = frames.reshape({3, 8, 4, 16, 16});
  EXPECT_NEAR(fid(frames, asg::testing::as_references(as_eight)), 0.0, 1e-6);
  // Padding (frame_valid 0) is not a sample: 6 clips of 4 real frames padded to 8 hold the same 24 frames.
  std::vector<asg::Sticker> padded;
  for (int64_t i = 0; i < 6; ++i)
    padded.push_back(asg::Sticker{std::to_string(i), torch::cat({frames[i], torch::zeros({4, 4, 16, 16})}), {}, "", {},
                                  torch::tensor({1, 1, 1, 1, 0, 0, 0, 0}, torch::kFloat)});
  EXPECT_NEAR(fid(frames, padded), 0.0, 1e-6);
  EXPECT_GT(fid((frames * 0.5).clamp(0, 1), asg::testing::as_references(as_eight)), 1e-3);
}

TEST(Fid, AnI3dFileIsNotAnInceptionFile) {
  const auto file = asg::testing::extractor_fixture("i3d");
  // I3D's forward has return_features too, but fails on 4-D frames: refused naming the file.
  auto m = make_under_test<asg::Metric>("fid", {{"model", file.string()}, {"sha256", asg::sha256_file(file)}},
                                        asg::testing::clip_context(4));
  try {
    m->update(torch::rand({1, 4, 4, 16, 16}), {}, 0);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
  }
}
