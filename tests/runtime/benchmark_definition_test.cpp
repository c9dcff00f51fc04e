// Benchmark definitions: what a definition pins is filled into an experiment or refused with both places and
// both values; bad definition files are refused naming file and line; the shipped definitions load.
#include "asg/benchmark_definition.h"
#include "asg/experiment.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "asg/media/gif.h"
#include "asg/hash.h"
#include "extractor_fixtures.h"
#include "test_animation.h"
#include "experiment_files.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kDefinition = R"([benchmark]
name = "tiny-bench"
version = "3"
rank_by = "frechet_pixel"
seeds = [0, 1]

[dataset]
plugin = "synthetic_stickers"
size = 16
frames = 8

[eval]
num_samples = 64

[sampler]
plugin = "ddim"
steps = 25

[[metrics]]
plugin = "frechet_pixel"
covariance = "unbiased"

[assumptions]
"eval.num_samples" = "a guess"
)";

// An experiment that names the benchmark and leaves the protocol to it.
constexpr const char* kMethodOnly = R"([text_encoder]
plugin = "word_embedding"
[backbone]
plugin = "unet3d"
[temporal]
plugin = "none"
[benchmark]
name = "tiny-bench"
)";

class BenchmarkDefinitionTest : public asg::testing::ExperimentFilesTest {
 protected:
  void SetUp() override {
    ExperimentFilesTest::SetUp();
    fs::create_directories(dir_ / "defs");
    write("defs/tiny.toml", kDefinition);
    ::setenv("ASG_BENCHMARK_PATH", (dir_ / "defs").c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("ASG_BENCHMARK_PATH");
    ExperimentFilesTest::TearDown();
  }
  std::string def_file() const { return (dir_ / "defs/tiny.toml").string(); }
};

}  // namespace

TEST_F(BenchmarkDefinitionTest, WhatTheExperimentLeavesOutIsFilledInFromTheDefinition) {
  const auto exp = load(write("e.toml", kMethodOnly));
  ASSERT_TRUE(exp.benchmark_definition.has_value());
  EXPECT_EQ(exp.benchmark_definition->file, def_file());
  EXPECT_EQ(exp.eval.integer("num_samples"), 64);
  EXPECT_EQ(exp.slot("dataset").plugin, "synthetic_stickers");
  EXPECT_EQ(exp.slot("sampler").params.integer("steps"), 25);
  ASSERT_EQ(exp.metric_slots().size(), 1u);
  EXPECT_EQ(exp.metric_slots()[0]->plugin, "frechet_pixel");
  EXPECT_EQ(exp.benchmark.str("version"), "3");
  EXPECT_EQ(exp.benchmark.str("rank_by"), "frechet_pixel");
  // The pinned dataset parameters define the references: they are part of the protocol.
  EXPECT_EQ(exp.reference_keys, (std::vector<std::string>{"frames", "size"}));
  EXPECT_NE(exp.protocol_json.find(R"("params":{"frames":8,"size":16})"), std::string::npos) << exp.protocol_json;
}

TEST_F(BenchmarkDefinitionTest, AnExperimentThatSetsAPinnedKeyOtherwiseIsRefusedNamingBothPlaces) {
  const auto file = write("e.toml", std::string(kMethodOnly) + "[eval]\nnum_samples = 8\n");
  EXPECT_EQ(error_of(file), file + ":10:15: [eval] num_samples = 8, but benchmark 'tiny-bench' (version 3) measures num_samples = "
                                   "64 (" + def_file() + ":13:15); set it to 64, or leave it out, or give this experiment "
                                   "another [benchmark] name for another protocol");
  // The same from the command line, and the same value written as it is pinned is accepted.
  EXPECT_EQ(error_of(write("m.toml", kMethodOnly), {"eval.num_samples=32"}).rfind("command line --set eval.num_samples=32: "
                                                                                 "[eval] num_samples = 32, but benchmark",
                                                                                 0),
            0u);
  EXPECT_EQ(load(write("same.toml", std::string(kMethodOnly) + "[eval]\nnum_samples = 64\n")).eval.integer("num_samples"), 64);
}

TEST_F(BenchmarkDefinitionTest, AnotherDatasetOrSamplerPluginIsRefused) {
  const auto file = write("e.toml", std::string(kMethodOnly) + "[sampler]\nplugin = \"euler\"\n");
  EXPECT_EQ(error_of(file), file + ":10:10: [sampler] plugin = \"euler\", but benchmark 'tiny-bench' (version 3) measures with "
                                   "[sampler] plugin = \"ddim\" (" + def_file() + ":16:10); use it, or give this experiment "
                                   "another [benchmark] name for another protocol");
}

TEST_F(BenchmarkDefinitionTest, TheExperimentListsExactlyTheDefinitionsMetrics) {
  const auto extra = write("extra.toml", std::string(kMethodOnly) + "[[metrics]]\nplugin = \"frechet_pixel\"\n[[metrics]]\n"
                                                                    "plugin = \"caption_accuracy\"\n");
  EXPECT_NE(error_of(extra).find("[[metrics]] plugin = \"caption_accuracy\": benchmark 'tiny-bench' (version 3) measures exactly "
                                 "frechet_pixel"),
            std::string::npos);
  // A metric listed with its parameters left out gets them; one set otherwise is refused.
  const auto listed = write("listed.toml", std::string(kMethodOnly) + "[[metrics]]\nplugin = \"frechet_pixel\"\npool = 2\n");
  const auto exp = load(listed);
  EXPECT_EQ(exp.metric_slots()[0]->params.str("covariance"), "unbiased");
  EXPECT_EQ(exp.metric_slots()[0]->params.integer("pool"), 2);  // left open by the definition
  const auto biased = write("biased.toml", std::string(kMethodOnly) + "[[metrics]]\nplugin = \"frechet_pixel\"\n"
                                                                      "covariance = \"biased\"\n");
  EXPECT_NE(error_of(biased).find("[metrics[0]] covariance = \"biased\", but benchmark 'tiny-bench' (version 3) measures "
                                  "covariance = \"unbiased\""),
            std::string::npos);
  // Another metric in place of the definition's is refused too.
  const auto other = write("other.toml", std::string(kMethodOnly) + "[[metrics]]\nplugin = \"caption_accuracy\"\n");
  EXPECT_NE(error_of(other).find("measures exactly frechet_pixel"), std::string::npos);
}

TEST_F(BenchmarkDefinitionTest, TheSeedMustBeOneOfTheDefinitions) {
  const auto file = write("e.toml", kMethodOnly);
  EXPECT_EQ(error_of(file, {"runtime.seed=7"}),
            "command line --set runtime.seed=7: [runtime] seed = 7, but benchmark 'tiny-bench' (version 3, " + def_file() +
                ") is run with seeds 0, 1 (valid: one of them, or another [benchmark] name)");
  EXPECT_EQ(load(file, {"runtime.seed=1"}).runtime.integer("seed"), 1);
}

TEST_F(BenchmarkDefinitionTest, ABenchmarkWithoutADefinitionIsAdHoc) {
  std::string text = kMethodOnly;
  text.replace(text.find("tiny-bench"), 10, "my-own");
  text += "[dataset]\nplugin = \"synthetic_stickers\"\n[sampler]\nplugin = \"ddim\"\nsteps = 3\n[[metrics]]\nplugin = "
          "\"frechet_pixel\"\n[eval]\nnum_samples = 4\n";
  const auto exp = load(write("e.toml", text));
  EXPECT_FALSE(exp.benchmark_definition.has_value());
  EXPECT_EQ(exp.eval.integer("num_samples"), 4);
  // The references are the dataset's name and version, as before definitions: no pinned parameters.
  EXPECT_NE(exp.protocol_json.find(R"("references":{"dataset":"synthetic_stickers","version":"2.0.0"})"), std::string::npos)
      << exp.protocol_json;
}

TEST_F(BenchmarkDefinitionTest, BadDefinitionFilesAreRefusedNamingFileAndLine) {
  auto refusal = [&](const std::string& text) {
    const auto file = write("bad/def.toml", text);
    try {
      asg::discover_benchmarks({dir_ / "bad"});
    } catch (const asg::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string bad = (dir_ / "bad/def.toml").string();
  EXPECT_EQ(refusal("[benchmark]\nname = \"x\"\nversion = \"1\"\n[train]\nsteps = 3\n"),
            bad + ":4:1: unknown section 'train' in a benchmark definition (valid: benchmark, dataset, eval, sampler, metrics, "
                  "assumptions, reproduction).");
  EXPECT_EQ(refusal("[benchmark]\nname = \"x\"\n"),
            bad + ":1:1: [benchmark] needs a non-empty name and version (version as a string, e.g. \"1\")");
  EXPECT_EQ(refusal("[benchmark]\nname = \"x\"\nversion = \"1\"\n[eval]\nnum_samples = 3\n[assumptions]\n\"eval.split\" = \"?\"\n"),
            bad + ":7:16: [assumptions] \"eval.split\": the definition sets no such key (write \"<section>.<key>\", and "
                  "\"metrics.<plugin>.<key>\" for a metric)");
  EXPECT_EQ(refusal("[benchmark]\nname = \"x\"\nversion = \"1\"\nseeds = [-1]\n"),
            bad + ":4:10: [benchmark] seeds: every seed must be an integer >= 0");
  // Two files of one directory with the same name are a mistake; an earlier directory wins over a later one.
  write("bad/def.toml", "[benchmark]\nname = \"x\"\nversion = \"1\"\n");
  write("bad/def2.toml", "[benchmark]\nname = \"x\"\nversion = \"2\"\n");
  EXPECT_EQ(refusal("[benchmark]\nname = \"x\"\nversion = \"1\"\n"),
            bad + " and " + (dir_ / "bad/def2.toml").string() + " both define benchmark 'x'; rename one");
  fs::remove(dir_ / "bad/def2.toml");
  write("later/def.toml", "[benchmark]\nname = \"x\"\nversion = \"9\"\n");
  EXPECT_EQ(asg::find_benchmark("x", {dir_ / "bad", dir_ / "later"})->version, "1");
}

TEST_F(BenchmarkDefinitionTest, TheShippedDefinitionsLoadAndMarkTheirAssumptions) {
  ::unsetenv("ASG_BENCHMARK_PATH");
  const auto defs = asg::discover_benchmarks(asg::benchmark_search_path());
  std::vector<std::string> names;
  for (const auto& d : defs) names.push_back(d.name);
  EXPECT_EQ(names, (std::vector<std::string>{"synthetic-stickers-v2-16px", "vsd2m"}));
  const auto vsd2m = asg::find_benchmark("vsd2m", asg::benchmark_search_path());
  // What the papers do not state is marked: the sample counts, the FVD pipeline, the sampling setting.
  for (const char* key : {"eval.num_samples", "eval.num_real", "metrics.fvd.frames", "metrics.dover", "sampler.steps", "benchmark.seeds",
                          "benchmark.tasks"})
    EXPECT_TRUE(vsd2m->assumptions.count(key)) << key;
  // The quickstart is on the synthetic benchmark, and its settings are the benchmark's.
  const auto quickstart = load((asg::testing::source_dir() / "experiments/quickstart.toml").string());
  ASSERT_TRUE(quickstart.benchmark_definition.has_value());
  EXPECT_EQ(quickstart.benchmark_definition->name, "synthetic-stickers-v2-16px");
}

// A VSD2M-protocol experiment: the user gives the data, the weights and the extractor files, the definition the
// rest. (The committed system's pretrained files are not here: its init_from keys are cleared.)
TEST_F(BenchmarkDefinitionTest, AVsd2mExperimentTakesTheProtocolAndNeedsOnlyDataAndExtractorFiles) {
  ::unsetenv("ASG_BENCHMARK_PATH");
  write("vsd2m/records.jsonl", R"({"md5": "m1", "fmt": "gif", "nframes": 2, "visual_path": "a.gif", "eng_cap": "a cat"})" "\n");
  asg::write_gif(dir_ / "vsd2m/a.gif", asg::testing::test_animation(8, 8, 2, true));
  const fs::path i3d = asg::testing::extractor_fixture("i3d"), clip = asg::testing::extractor_fixture("clip"),
                 dover = asg::testing::extractor_fixture("dover");
  const std::string merges = (asg::testing::source_dir() / "tests/fixtures/clip_bpe_merges.txt").string();
  // extra: tables the system's own slots need (I2VGen-XL's image encoder without its pretrained file).
  auto experiment = [&](const std::string& system, const std::string& task, const std::string& extra = "") {
    return write("vsd2m-" + task + ".toml", R"(base = [")" + (asg::testing::source_dir() / "experiments/vsd2m" / system).string() + R"("]
[dataset]
manifest = "vsd2m/records.jsonl"
root = "vsd2m"
[autoencoder]
init_from = ""
[text_encoder]
init_from = ""
merges = ")" + merges + R"("
[backbone]
init_from = ""
init_allow_missing = []
[[metrics]]
plugin = "fvd"
model = ")" + i3d.string() + R"("
sha256 = ")" + asg::sha256_file(i3d) + R"("
[[metrics]]
plugin = "dover"
model = ")" + dover.string() + R"("
sha256 = ")" + asg::sha256_file(dover) + R"("
[[metrics]]
plugin = "clip_score"
model = ")" + clip.string() + R"("
sha256 = ")" + asg::sha256_file(clip) + R"("
merges = ")" + merges + R"("
[eval]
num_samples = 2048
task = ")" + task + R"("
)" + extra);
  };
  const auto exp = load(experiment("videoldm.toml", "generation"));
  EXPECT_EQ(exp.eval.integer("num_samples"), 2048);
  EXPECT_EQ(exp.slot("dataset").params.str("format"), "vsd2m");
  EXPECT_EQ(exp.slot("sampler").params.integer("steps"), 50);
  EXPECT_EQ(exp.metric_slots()[0]->params.integer("frames"), 16);
  EXPECT_EQ(exp.metric_slots()[1]->plugin, "dover");
  EXPECT_EQ(exp.metric_slots()[2]->params.str("scale"), "raw");
  EXPECT_EQ(exp.benchmark.str("rank_by"), "fvd");
  EXPECT_EQ(exp.runtime.integer("seed"), 6666);
  // The image task is the benchmark's second protocol; a task it does not measure is refused, naming the key.
  EXPECT_EQ(load(experiment("i2vgen_xl.toml", "image", "[image_encoder]\ninit_from = \"\"\n")).eval.str("task"), "image");
  const auto refused = error_of(experiment("rdtf_dfgn_sti.toml", "prediction"));
  EXPECT_NE(refused.find("[eval] task = \"prediction\", but benchmark 'vsd2m' (version 2"), std::string::npos) << refused;
  EXPECT_NE(refused.find("measures the tasks generation, image"), std::string::npos) << refused;
}

namespace {

TEST_F(BenchmarkDefinitionTest, ReproductionTolerancesAreReadPerDefinitionAndPerMetric) {
  // The committed definitions declare none: no GPU rerun has been measured (docs/workflows.md).
  EXPECT_FALSE(asg::find_benchmark("tiny-bench", {dir_ / "defs"})->cuda_tolerance.has_value());
  write("tol/t.toml", "[benchmark]\nname = \"t\"\nversion = \"1\"\n[reproduction]\ncuda_abs = 0.001\ncuda_rel = 0.02\n"
                      "[reproduction.frechet_pixel]\ncuda_abs = 0.5\n");
  const auto t = asg::find_benchmark("t", {dir_ / "tol"});
  ASSERT_TRUE(t && t->cuda_tolerance);
  EXPECT_DOUBLE_EQ(t->cuda_tolerance->abs, 0.001);
  EXPECT_DOUBLE_EQ(t->cuda_tolerance->rel, 0.02);
  ASSERT_EQ(t->metric_tolerances.count("frechet_pixel"), 1u);
  EXPECT_DOUBLE_EQ(t->metric_tolerances.at("frechet_pixel").abs, 0.5);
  EXPECT_DOUBLE_EQ(t->metric_tolerances.at("frechet_pixel").rel, 0.0);

  write("bad/t.toml", "[benchmark]\nname = \"t\"\nversion = \"1\"\n[reproduction]\ncuda_rell = 0.02\n");
  try {
    asg::discover_benchmarks({dir_ / "bad"});
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.toml:5:13: [reproduction] cuda_rell: unknown key (valid: cuda_abs, cuda_rel"), std::string::npos)
        << e.what();
  }
  write("neg/t.toml", "[benchmark]\nname = \"t\"\nversion = \"1\"\n[reproduction]\ncuda_abs = -1\n");
  EXPECT_THROW(asg::discover_benchmarks({dir_ / "neg"}), asg::Error);
}

}  // namespace
