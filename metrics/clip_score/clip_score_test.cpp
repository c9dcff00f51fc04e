#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/kinds/metric.h"
#include "metric_driver.h"
#include "plugin_under_test.h"
#include "test_clips.h"
#include "extractor_fixtures.h"
#include "test_paths.h"

using asg::testing::make_under_test;

namespace {

// "probe": encode_image = the mean CLIP-normalised pixel, encode_text = (1, 1, 1).
std::filesystem::path clip_fixture(const std::string& variant) { return asg::testing::extractor_fixture("clip", variant); }

std::map<std::string, asg::ParamValue> params(const std::string& option, std::map<std::string, asg::ParamValue> p = {}) {
  const auto file = clip_fixture(option);
  p["model"] = file.string();
  p["sha256"] = asg::sha256_file(file);
  p["merges"] = (asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt").string();
  return p;
}

// Opaque clips of one colour per frame (0-255 grey levels).
torch::Tensor grey_clips(const std::vector<std::vector<int>>& levels) {
  std::vector<torch::Tensor> clips;
  for (const auto& clip : levels) {
    auto c = torch::ones({static_cast<int64_t>(clip.size()), 4, 8, 8});
    for (size_t t = 0; t < clip.size(); ++t) c[static_cast<int64_t>(t)].narrow(0, 0, 3).fill_(clip[t] / 255.0);
    clips.push_back(c);
  }
  return torch::stack(clips);
}

// The probe's cosine for an opaque grey frame: CLIP-normalised (g/255 - mean)/std against (1, 1, 1).
double probe_cosine(int grey) {
  const double mean[3] = {0.48145466, 0.4578275, 0.40821073}, sd[3] = {0.26862954, 0.26130258, 0.27577711};
  double n[3], dot = 0, norm = 0;
  for (int c = 0; c < 3; ++c) {
    n[c] = (static_cast<double>(static_cast<float>(grey / 255.0f)) - mean[c]) / sd[c];
    dot += n[c];
    norm += n[c] * n[c];
  }
  return dot / (std::sqrt(norm) * std::sqrt(3.0));
}

std::map<std::string, double> score(const torch::Tensor& clips, std::map<std::string, asg::ParamValue> p = {},
                                    const std::string& fixture = "probe") {
  auto m = make_under_test<asg::Metric>("clip_score", params(fixture, std::move(p)), asg::testing::clip_context(clips.size(1), 8));
  auto refs = asg::testing::as_references(clips);
  for (auto& r : refs) r.caption = "a sticker of a cat waving";
  return asg::testing::metric_results(*m, clips, refs);
}

}  // namespace

TEST(ClipScore, TorchmetricsClampsTheMeanNotEachSample) {
  // Two black clips and a white one: cosines about -1, -1 and +1. Their mean is negative, so torchmetrics
  // reports 0, where clamping each sample would give about 33.
  const auto mostly_black = grey_clips({{0, 0}, {0, 0}, {255, 255}});
  const double mean = (4 * probe_cosine(0) + 2 * probe_cosine(255)) / 6;
  ASSERT_LT(mean, -0.2);
  EXPECT_EQ(score(mostly_black)["clip_score"], 0.0);
  EXPECT_NEAR(score(mostly_black, {{"scale", std::string("raw")}})["clip_score"], mean, 1e-6);
  const auto mostly_white = grey_clips({{255, 255}, {255, 255}, {0, 0}});
  EXPECT_NEAR(score(mostly_white)["clip_score"], 100 * (4 * probe_cosine(255) + 2 * probe_cosine(0)) / 6, 1e-4);
}

TEST(ClipScore, TemporalConsistencyOnConstantAlternatingAndReversedClips) {
  EXPECT_NEAR(score(grey_clips({{200, 200, 200, 200}}))["clip_score.temporal_consistency"], 1.0, 1e-9);
  // White and black frames point in opposite directions: every step is clamped to 0.
  EXPECT_EQ(score(grey_clips({{255, 0, 255, 0}}))["clip_score.temporal_consistency"], 0.0);
  const auto ramp = grey_clips({{30, 90, 150, 210, 250}});
  const double forward = score(ramp)["clip_score.temporal_consistency"];
  EXPECT_NEAR(score(ramp.flip(1))["clip_score.temporal_consistency"], forward, 1e-12);
  const auto shuffled = ramp.index_select(1, torch::tensor({0, 4, 1, 3, 2}));
  EXPECT_LT(score(shuffled)["clip_score.temporal_consistency"], forward);
}

TEST(ClipScore, TransparentPixelsShowTheProtocolBackgroundAndTheRealSetIsTheReference) {
  auto clear = grey_clips({{0, 0}});
  clear.select(2, 3).zero_();  // fully transparent black: white over the default background
  EXPECT_NEAR(score(clear)["clip_score"], 100 * probe_cosine(255), 1e-4);
  EXPECT_NEAR(score(clear, {{"background", std::vector<int64_t>{0, 0, 0}}, {"scale", std::string("raw")}})["clip_score"],
              probe_cosine(0), 1e-6);
  // A random-weight CLIP (the interface, not CLIP): real set == generated set gives its reference value.
  const auto clips = grey_clips({{10, 120, 250}, {90, 60, 30}});
  const auto r = score(clips, {}, "");
  EXPECT_TRUE(std::isfinite(r.at("clip_score")));
  EXPECT_NEAR(r.at("clip_score"), r.at("clip_score.reference"), 1e-9);
  EXPECT_NEAR(r.at("clip_score.temporal_consistency"), r.at("clip_score.temporal_consistency_reference"), 1e-9);
}

TEST(ClipScore, FilesWithoutTheInterfaceOrWithAnotherHashAreRefusedNamingTheFile) {
  const auto ctx = asg::testing::clip_context(2, 8);
  try {
    make_under_test<asg::Metric>("clip_score", params("wrong-interface"), ctx);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find(clip_fixture("wrong-interface").string() + ": has no method encode_text()"),
              std::string::npos)
        << e.what();
  }
  auto p = params("probe");
  p["sha256"] = std::string(64, '0');
  EXPECT_THROW(make_under_test<asg::Metric>("clip_score", p, ctx), asg::Error);
}
