// The recording stages: the run recorder with its sample writer, the statistics cache key, and metrics built
// after training from the plugin libraries checked before it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "asg/plugin_catalog.h"
#include "asg/stages/runtime_settings.h"
#include "asg/stages/recorder.h"
#include "asg/stages/sample_writer.h"
#include "asg/stages/evaluator.h"
#include "conformance.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

// A registry and runs folder of its own, and the quickstart experiment to record.
class RunRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = asg::testing::make_temp_dir("recorder");
    options.registry_path = dir / "registry.sqlite";
    options.runs_dir = dir / "runs";
    asg::PluginCatalog catalog;
    exp = asg::load_experiment(asg::testing::source_dir() / "experiments" / "quickstart.toml", {}, catalog);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
  asg::RunOptions options;
  asg::Experiment exp;
};

}  // namespace

TEST_F(RunRecorderTest, RecordsTheRunItsSamplesAndItsEnd) {
  asg::RuntimeSettings settings;
  std::string id;
  {
    asg::RunRecorder recorder(exp, options, settings);
    id = recorder.run_id();
    EXPECT_TRUE(fs::exists(recorder.run_dir() / "config.toml"));
    asg::SampleWriter samples(recorder, /*save_gifs=*/2, /*gif_scale=*/2, /*fps=*/8);
    for (int64_t i = 0; i < 3; ++i) samples.add(i, torch::rand({4, 4, 8, 8}), i == 0 ? "a red star" : "");
    samples.finish();
    recorder.metric("train/loss", 1, 0.5);
    recorder.finish({{"caption_accuracy", 0.75, true}});
  }
  asg::Registry registry(options.registry_path);
  auto run = registry.find_run(id);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, asg::RunStatus::Finished);
  EXPECT_EQ(run->method_hash, exp.method_hash);
  EXPECT_EQ(run->protocol_hash, exp.protocol_hash);
  EXPECT_EQ(run->protocol_json, exp.protocol_json);
  EXPECT_NE(run->host_json.find("\"asg_version\""), std::string::npos) << run->host_json;
  std::vector<std::string> artifacts;
  for (const auto& a : registry.artifacts(id)) artifacts.push_back(a.path);
  std::sort(artifacts.begin(), artifacts.end());
  EXPECT_EQ(artifacts, (std::vector<std::string>{"config.toml", "metrics.json", "samples/0000_a-red-star.gif",
                                                 "samples/0001_unconditional.gif", "samples/captions.txt", "samples/grid.gif"}));
  EXPECT_EQ(registry.metric_history(id, "train/loss").size(), 1u);
  EXPECT_EQ(registry.plugins(id).size(), exp.slots.size());
}

TEST_F(RunRecorderTest, AnInterruptEndsTheRunKilledAndAnyOtherErrorFailed) {
  std::string killed, failed;
  {
    asg::RunRecorder a(exp, options, {});
    killed = a.run_id();
    a.metric("train/loss", 25, 0.4);  // pending when the interrupt comes: kept
    a.fail(asg::Error(asg::ErrorKind::Interrupted, "interrupted by SIGINT"));
    asg::RunRecorder b(exp, options, {});
    failed = b.run_id();
    b.fail(asg::data_error("/data/x.gif: broken"));
  }
  asg::Registry registry(options.registry_path);
  EXPECT_EQ(registry.find_run(killed)->status, asg::RunStatus::Killed);
  EXPECT_EQ(registry.metric_history(killed, "train/loss").size(), 1u);
  EXPECT_EQ(registry.find_run(failed)->status, asg::RunStatus::Failed);
  EXPECT_EQ(registry.find_run(failed)->error, "/data/x.gif: broken");
}

// The statistics cache key: whatever changes the real side's numbers changes the key (the dataset's files
// by content, the metric's parameters, the split, the number of real clips); what does not (the seed, the
// model) leaves it.
TEST(StatisticsCache, TheKeyFollowsEverythingTheRealSideDependsOn) {
  const auto dir = asg::testing::make_temp_dir("cache-key");
  fs::copy(asg::testing::conformance_corpus(), dir / "corpus", fs::copy_options::recursive);
  std::ofstream(dir / "e.toml") << fmt::format(R"(
base = ["{}"]
[dataset]
__replace__ = true
plugin = "sticker_files"
manifest = "corpus/manifest.jsonl"
[[metrics]]
plugin = "frechet_pixel"
[benchmark]
name = ""
rank_by = ""
)",
                                               (asg::testing::source_dir() / "experiments" / "quickstart.toml").string());
  asg::PluginCatalog catalog = asg::PluginCatalog::discover();
  auto key = [&](std::vector<std::string> overrides = {}, int64_t num_real = 8) {
    const asg::Experiment exp = asg::load_experiment(dir / "e.toml", overrides, catalog);
    return asg::StatisticsCache::key_for(exp, *exp.metric_slots()[0], num_real);
  };
  const std::string base = key();
  EXPECT_EQ(key({"runtime.seed=5", "train.steps=3"}), base);  // the model is not the real side
  EXPECT_NE(key({}, 9), base);
  EXPECT_NE(key({"eval.split=\"validation\""}), base);
  EXPECT_NE(key({"metrics.0.pool=2"}), base);
  EXPECT_NE(key({"metrics.0.covariance=\"biased\""}), base);
  // The same manifest path with other content: another key.
  std::ofstream(dir / "corpus" / "manifest.jsonl", std::ios::app) << "\n";
  EXPECT_NE(key(), base);
  fs::remove_all(dir);
}

// Metrics are built again after training from the libraries opened before it: a plugin file rebuilt or
// replaced while a run trains cannot change its evaluation or fail it at the end.
TEST(BuildMetrics, AfterTrainingUseTheLibrariesCheckedBeforeIt) {
  asg::PluginCatalog catalog = asg::PluginCatalog::discover();
  asg::Experiment exp =
      asg::load_experiment(asg::testing::source_dir() / "experiments" / "quickstart.toml", {"train.steps=0"}, catalog);
  // The second metric (frechet_pixel) from a copy of its library, which the test can replace.
  const auto dir = asg::testing::make_temp_dir("metric-libraries");
  asg::PluginSlot* slot = nullptr;
  for (auto& s : exp.slots)
    if (s.section == "metrics[1]") slot = &s;
  ASSERT_NE(slot, nullptr);
  asg::PluginRecord copy = *slot->record;
  copy.library_path = dir / copy.library_path.filename();
  fs::copy_file(slot->record->library_path, copy.library_path);
  slot->record = std::make_shared<const asg::PluginRecord>(copy);
  asg::BuiltExperiment built = asg::build_experiment(exp, asg::noise_schedule(exp), 0);
  // Replaced by another library while the run "trains" (a new file, as a linker writes it: the mapped one
  // stays intact).
  fs::remove(copy.library_path);
  fs::copy_file(asg::testing::plugin_dir() / "asg_metric_motion.so", copy.library_path);
  EXPECT_THROW(asg::build_metrics(exp, built.info, torch::kCPU, 0), asg::Error);  // opened now: refused
  const auto metrics = asg::build_metrics(exp, built.info, torch::kCPU, 0, built.metric_libraries);
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_TRUE(metrics[1].second->uses_real_set());  // frechet_pixel, from the library checked before
  fs::remove_all(dir);
}
