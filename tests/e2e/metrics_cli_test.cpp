// End-to-end: metrics through the real `asg` binary: `asg fd` on feature files, the temporal and alpha metrics
// in a run, the real-statistics cache, FVD from a TorchScript extractor.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "asg/hash.h"
#include "asg/registry.h"
#include "asg/files.h"

#include "cli_fixture.h"

namespace fs = std::filesystem;
using asg::testing::CliTest;
using Result = asg::testing::CliResult;
using asg::testing::run_asg;

namespace {
// The `fd = <value>` line of `asg fd` (NaN when missing).
double printed_fd(const std::string& output) {
  const auto at = output.rfind("fd = ");
  return at == std::string::npos ? std::nan("") : std::stod(output.substr(at + 5));
}
}  // namespace

// A reviewer checks a number from another pipeline on its own features: numpy files in, the pytorch-fid
// (scipy sqrtm) value out, in both covariance conventions.
TEST_F(CliTest, FdPrintsTheScipyValueForNumpyFeatureFilesAndRefusesMismatchedOnes) {
  ASSERT_TRUE(asg::testing::write_fixture("frechet_reference.py", dir_ / "features"));
  const auto reference = nlohmann::json::parse(asg::read_text_file(dir_ / "features" / "reference.json"));
  for (const auto& c : reference["cases"]) {
    const std::string files = fmt::format("features/{} features/{}", c["a"].get<std::string>(), c["b"].get<std::string>());
    Result r = run_asg("fd " + files, dir_);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NEAR(printed_fd(r.output), c["unbiased"].get<double>(), 1e-6 * c["unbiased"].get<double>()) << r.output;
    EXPECT_NE(r.output.find("unbiased (divides by N-1)"), std::string::npos) << r.output;
    r = run_asg("fd " + files + " --covariance biased", dir_);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NEAR(printed_fd(r.output), c["biased"].get<double>(), 1e-6 * c["biased"].get<double>()) << r.output;
  }
  // Features of two extractors: both files and both dimensions named.
  Result r = run_asg("fd features/case0_a.npy features/case1_b.npy", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("features/case0_a.npy has 16-dimensional features but features/case1_b.npy has 64"), std::string::npos)
      << r.output;
  r = run_asg("fd features/case0_a.npy features/reference.json", dir_);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("features/reference.json: not a .npy file"), std::string::npos) << r.output;
  r = run_asg("fd features/case0_a.npy features/case0_b.npy --covariance population", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--covariance"), std::string::npos) << r.output;
}

// The weight-free temporal and alpha metrics in a real run: every key recorded, in range, under the run's protocol.
TEST_F(CliTest, TemporalAndAlphaMetricsAreRecordedForARun) {
  std::ofstream(dir_ / "temporal.toml") << fmt::format(R"(
base = ["tiny.toml"]
name = "tiny-temporal"
[train]
steps = 5
[[metrics]]
plugin = "caption_accuracy"
[[metrics]]
plugin = "motion"
[[metrics]]
plugin = "loop_seam"
[[metrics]]
plugin = "temporal_flickering"
[[metrics]]
plugin = "alpha_flicker"
[[metrics]]
plugin = "alpha_halo"
)");
  Result r = run_asg("run temporal.toml --registry reg.sqlite", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  asg::Registry reg(dir_ / "reg.sqlite");
  const auto runs = reg.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  std::map<std::string, double> results;
  for (const auto& v : reg.results(runs[0].id)) results[v.key] = v.value;
  for (const char* key : {"motion.magnitude", "motion.diversity", "motion.frozen_fraction", "motion.magnitude_reference",
                          "motion.diversity_reference", "loop_seam", "loop_seam.reference", "temporal_flickering",
                          "temporal_flickering.reference", "alpha_flicker", "alpha_flicker.reference", "alpha_halo",
                          "alpha_halo.matte_ring", "alpha_halo.reference", "alpha_halo.matte_ring_reference"})
    ASSERT_TRUE(results.count(key)) << key << " missing; output:\n" << r.output;
  for (const char* key : {"motion.frozen_fraction", "temporal_flickering", "temporal_flickering.reference", "alpha_flicker",
                          "alpha_flicker.reference", "alpha_halo", "alpha_halo.matte_ring", "alpha_halo.reference"}) {
    EXPECT_GE(results[key], 0.0) << key;
    EXPECT_LE(results[key], 1.0) << key;
  }
  // The quickstart's synthetic stickers move: their own motion is measured as such.
  EXPECT_GT(results["motion.magnitude_reference"], 0.0);
  EXPECT_LT(results["temporal_flickering.reference"], 1.0);
}

// The real side of distribution metrics is computed once per protocol and read back after that; a changed
// metric parameter is another key, and a damaged entry is a miss that gets rewritten. Results with a warm
// cache equal those computed from scratch.
TEST_F(CliTest, RealStatisticsAreCachedPerProtocolAndRecomputedWhenTheKeyChanges) {
  const std::string run = "run tiny.toml --registry reg.sqlite --set train.steps=2";
  const std::string computed = "real set: 6 test clips through frechet_pixel (statistics cached in runs/cache/real_statistics)";
  const std::string cached = "real set: frechet_pixel statistics of 6 test clips from the cache";
  Result first = run_asg(run, dir_);
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find(computed), std::string::npos) << first.output;
  Result again = run_asg(run, dir_);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find(cached), std::string::npos) << again.output;
  {
    asg::Registry reg(dir_ / "reg.sqlite");
    const auto runs = reg.list_runs();  // newest first
    ASSERT_EQ(runs.size(), 2u);
    const auto cold = reg.results(runs[1].id), warm = reg.results(runs[0].id);
    ASSERT_EQ(cold.size(), warm.size());
    for (size_t i = 0; i < cold.size(); ++i) {
      EXPECT_EQ(cold[i].key, warm[i].key);
      EXPECT_EQ(cold[i].value, warm[i].value) << cold[i].key;
    }
  }
  // Another seed trains another model but measures under the same protocol: still a hit.
  Result other_seed = run_asg(run + " --set runtime.seed=7", dir_);
  EXPECT_NE(other_seed.output.find(cached), std::string::npos) << other_seed.output;
  // Another pooling is another feature space: a miss.
  Result other_pool = run_asg(run + " --set metrics.1.pool=2", dir_);
  ASSERT_EQ(other_pool.code, 0) << other_pool.output;
  EXPECT_NE(other_pool.output.find(computed), std::string::npos) << other_pool.output;
  // More real clips: a miss.
  Result more_real = run_asg(run + " --set eval.num_real=9", dir_);
  EXPECT_NE(more_real.output.find("real set: 9 test clips through frechet_pixel"), std::string::npos) << more_real.output;
  // A damaged entry (cut short) is a miss, and is rewritten whole.
  int damaged = 0;
  for (const auto& entry : fs::directory_iterator(dir_ / "runs" / "cache" / "real_statistics"))
    if (entry.path().extension() == ".pt") {
      fs::resize_file(entry.path(), fs::file_size(entry.path()) / 2);
      ++damaged;
    }
  EXPECT_EQ(damaged, 3);
  Result after_damage = run_asg(run, dir_);
  EXPECT_NE(after_damage.output.find(computed), std::string::npos) << after_damage.output;
  Result repaired = run_asg(run, dir_);
  EXPECT_NE(repaired.output.find(cached), std::string::npos) << repaired.output;
}

// FVD in a real run with an I3D-interface TorchScript file (random weights): recorded, its real statistics
// cached, and a different extractor file (another sha256) is another cache key.
TEST_F(CliTest, FvdFromATorchScriptFileRunsAndItsCacheFollowsTheFilesHash) {
  ASSERT_TRUE(asg::testing::write_fixture("write_extractor_torchscript.py", dir_ / "i3d.pt", "--kind i3d"));
  ASSERT_TRUE(asg::testing::write_fixture("write_extractor_torchscript.py", dir_ / "i3d_other.pt", "--kind i3d --features 64"));
  auto experiment = [&](const std::string& file) {
    std::ofstream(dir_ / "fvd.toml") << fmt::format(R"(
base = ["tiny.toml"]
[train]
steps = 2
[[metrics]]
plugin = "caption_accuracy"
[[metrics]]
plugin = "fvd"
model = "{}"
sha256 = "{}"
)",
                                                    (dir_ / file).string(), asg::sha256_file(dir_ / file));
  };
  experiment("i3d.pt");
  Result first = run_asg("run fvd.toml --registry reg.sqlite", dir_);
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("real set: 6 test clips through fvd"), std::string::npos) << first.output;
  Result second = run_asg("run fvd.toml --registry reg.sqlite", dir_);
  EXPECT_NE(second.output.find("real set: fvd statistics of 6 test clips from the cache"), std::string::npos) << second.output;
  experiment("i3d_other.pt");
  Result other = run_asg("run fvd.toml --registry reg.sqlite", dir_);
  ASSERT_EQ(other.code, 0) << other.output;
  EXPECT_NE(other.output.find("real set: 6 test clips through fvd"), std::string::npos) << other.output;
  asg::Registry reg(dir_ / "reg.sqlite");
  for (const auto& run : reg.list_runs()) {
    std::map<std::string, double> results;
    for (const auto& v : reg.results(run.id)) results[v.key] = v.value;
    ASSERT_TRUE(results.count("fvd")) << run.id;
    EXPECT_TRUE(std::isfinite(results["fvd"]));
    EXPECT_GE(results["fvd"], 0);
  }
  // A file swapped under the experiment: refused before anything is recorded, naming both hashes.
  fs::copy_file(dir_ / "i3d.pt", dir_ / "i3d_other.pt", fs::copy_options::overwrite_existing);
  Result swapped = run_asg("run fvd.toml --registry reg.sqlite", dir_);
  EXPECT_EQ(swapped.code, 2) << swapped.output;
  EXPECT_NE(swapped.output.find(asg::sha256_file(dir_ / "i3d.pt")), std::string::npos) << swapped.output;
  EXPECT_EQ(reg.list_runs().size(), 3u);
}
