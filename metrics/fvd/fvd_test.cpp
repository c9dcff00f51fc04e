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

std::map<std::string, asg::ParamValue> with_model(const std::filesystem::path& file, std::map<std::string, asg::ParamValue> p = {}) {
  p["model"] = file.string();
  p["sha256"] = asg::sha256_file(file);
  return p;
}

double fvd(const torch::Tensor& generated, const std::vector<asg::Sticker>& real, std::map<std::string, asg::ParamValue> p = {}) {
  auto m = make_under_test<asg::Metric>("fvd", with_model(asg::testing::extractor_fixture("i3d"), p),
                                        asg::testing::clip_context(generated.size(1)));
  return asg::testing::metric_results(*m, generated, real)["fvd"];
}

torch::Tensor clips(int64_t n, int64_t frames, int64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back(asg::testing::moving_disc(frames, 16, 3 + i % 3, 1 + i % 2, static_cast<double>(i)) *
                  torch::rand({1, 4, 1, 1}).clamp_min(0.3));
  return torch::stack(out);
}

}  // namespace

TEST(Fvd, ZeroForTheSameSetGrowingWithTheDifference) {
  const auto real = clips(6, 8, 0);
  const auto refs = asg::testing::as_references(real);
  EXPECT_NEAR(fvd(real, refs), 0.0, 1e-6);
  const double near = fvd((real + 0.05).clamp(0, 1), refs), far = fvd((real + 0.4).clamp(0, 1), refs);
  EXPECT_GT(near, 0);
  EXPECT_GT(far, near);
}

TEST(Fvd, ShortStickersLoopByTheSameRuleOnBothSides) {
  // A real sticker with 4 real frames (padded to 8) and a generated clip that is those 4 frames twice over
  // are the same 16-frame video.
  const auto base = clips(5, 4, 1);
  std::vector<asg::Sticker> real;
  for (int64_t i = 0; i < base.size(0); ++i) {
    auto padded = torch::cat({base[i], base[i][3].unsqueeze(0).expand({4, 4, 16, 16})});
    real.push_back(asg::Sticker{std::to_string(i), padded, {}, "", {}, torch::tensor({1, 1, 1, 1, 0, 0, 0, 0}, torch::kFloat)});
  }
  const auto looped = torch::cat({base, base}, 1);
  EXPECT_NEAR(fvd(looped, real), 0.0, 1e-6);
  // Without the loop rule (the padding taken as frames) they differ.
  EXPECT_GT(fvd(torch::stack({real[0].frames, real[1].frames, real[2].frames, real[3].frames, real[4].frames}),
                asg::testing::as_references(looped)),
            1e-6);
}

TEST(Fvd, BatchingAndWhatTransparentPixelsHoldDoNotChangeTheNumber) {
  const auto real = clips(6, 8, 2);
  const auto generated = clips(6, 8, 3);
  const auto refs = asg::testing::as_references(real);
  const double batched = fvd(generated, refs, {{"batch_size", int64_t{4}}});
  // Other batch sizes change only the float32 rounding inside the network (oneDNN picks kernels by shape).
  EXPECT_NEAR(fvd(generated, refs, {{"batch_size", int64_t{1}}}), batched, 1e-5 * batched);
  auto recoloured = generated.clone();
  const auto clear = (recoloured.select(2, 3) == 0).unsqueeze(2).expand_as(recoloured.narrow(2, 0, 3));
  recoloured.narrow(2, 0, 3).masked_fill_(clear, 0.7f);
  EXPECT_NEAR(fvd(recoloured, refs, {{"batch_size", int64_t{4}}}), batched, 1e-9 * batched);
}

TEST(Fvd, ExtractorFilesWithAnotherHashOrInterfaceAreRefusedNamingTheFile) {
  const auto file = asg::testing::extractor_fixture("i3d");
  const auto ctx = asg::testing::clip_context(8);
  try {
    make_under_test<asg::Metric>("fvd", {{"model", file.string()}, {"sha256", std::string(64, 'a')}}, ctx);
    FAIL();
  } catch (const asg::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file.string()), std::string::npos) << what;
    EXPECT_NE(what.find(asg::sha256_file(file)), std::string::npos) << what;
    EXPECT_NE(what.find(std::string(64, 'a')), std::string::npos) << what;
  }
  const auto wrong = asg::testing::extractor_fixture("i3d", "wrong-interface");
  try {
    make_under_test<asg::Metric>("fvd", with_model(wrong), ctx);
    FAIL();
  } catch (const asg::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(wrong.string() + ": its forward() has no argument"), std::string::npos) << what;
    EXPECT_NE(what.find("i3d_torchscript.pt"), std::string::npos) << what;
  }
  // An Inception file has forward(img, return_features, ...) but not I3D's rescale / resize.
  EXPECT_THROW(make_under_test<asg::Metric>("fvd", with_model(asg::testing::extractor_fixture("inception")), ctx), asg::Error);
}

TEST(Fvd, NonFiniteFeaturesStopTheMetricNamingTheClip) {
  auto m = make_under_test<asg::Metric>("fvd", with_model(asg::testing::extractor_fixture("i3d", "nan")),
                                        asg::testing::clip_context(8));
  try {
    m->update(clips(2, 8, 4), {}, 10);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("generated clip 10"), std::string::npos) << e.what();
  }
}
