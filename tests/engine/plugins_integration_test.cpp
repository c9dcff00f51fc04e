// The real plugins together, loaded through the catalog as `asg` loads them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "asg/kinds/dataset.h"
#include "asg/kinds/metric.h"
#include "asg/plugin_catalog.h"
#include "asg/trainer.h"
#include "metric_driver.h"

namespace {

std::map<std::string, double> evaluate(const asg::PluginCatalog& catalog, const std::string& metric,
                                       const std::shared_ptr<asg::Dataset>& ds, const torch::Tensor& clips,
                                       const std::vector<asg::Sticker>& refs) {
  const auto& rec = catalog.find("metric", metric);
  auto m = catalog.create<asg::Metric>(metric, asg::default_params(metric, rec->factory.params),
                                       asg::MetricContext{ds->info(), "synthetic_stickers"});
  return asg::testing::metric_results(*m, clips, refs);
}

}  // namespace

TEST(RealPlugins, CaptionAccuracyIsExactOnRealSyntheticStickers) {
  auto catalog = asg::PluginCatalog::discover();
  auto ds = catalog.create<asg::Dataset>(
      "synthetic_stickers", asg::default_params("ds", catalog.find("dataset", "synthetic_stickers")->factory.params));
  std::vector<asg::Sticker> refs;
  for (int64_t i = 0; i < 256; ++i) refs.push_back(ds->get(asg::Split::Test, i));
  auto clips = asg::stack_frames(refs);
  auto r = evaluate(catalog, "caption_accuracy", ds, clips, refs);
  for (const char* key : {"", ".colour", ".shape", ".direction", ".path", ".identity", ".all", ".motion", ".clean"})
    EXPECT_EQ(r[std::string("caption_accuracy") + key], 1.0) << key;

  // Shuffling which caption goes with which clip must destroy the score: the metric reads the frames.
  std::vector<asg::Sticker> shifted(refs.begin() + 1, refs.end());
  shifted.push_back(refs.front());
  auto wrong = evaluate(catalog, "caption_accuracy", ds, clips, shifted);
  EXPECT_LT(wrong["caption_accuracy"], 0.5);
}

TEST(RealPlugins, ModelSpaceConversionRoundTripsStickers) {
  auto catalog = asg::PluginCatalog::discover();
  auto ds = catalog.create<asg::Dataset>(
      "synthetic_stickers", asg::default_params("ds", catalog.find("dataset", "synthetic_stickers")->factory.params));
  auto clips = asg::stack_frames({ds->get(asg::Split::Train, 0), ds->get(asg::Split::Train, 1)});
  auto x = asg::to_model_space(clips);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 4, 8, 16, 16}));
  EXPECT_LE(x.abs().max().item<double>(), 1.0);
  EXPECT_TRUE(torch::allclose(asg::from_model_space(x), clips, 1e-5, 1e-5));
}
