// End-to-end: the reviewer's and the student's commands through the real `asg` binary, on a reduced quickstart:
// reproduce (a pass on an identical rerun, a refusal and then a FAIL on a deliberately altered plugin), a sweep
// interrupted partway and rerun, compare, abbreviated ids, runs show/rm, and export/import between registries.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/registry.h"
#include "asg_cli.h"
#include "cli_fixture.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

using Result = asg::testing::CliResult;
using asg::testing::run_asg;

// The e2e fixture (cli_fixture.h) with a smaller training budget, and the registry's runs by role.
class WorkflowTest : public asg::testing::CliTest {
 protected:
  std::string tiny_budget() const override {
    return "[sampler]\nsteps = 3\n[train]\nsteps = 8\nbatch_size = 4\nlog_every = 2\n[eval]\nnum_samples = 6\nbatch_size = 3\nsave_gifs = 2\n";
  }
  std::vector<asg::RunRecord> runs(asg::RunRole role = asg::RunRole::Run) const {
    asg::Registry reg(registry());
    asg::RunQuery q;
    q.role = role;
    q.include_deleted = true;
    return reg.list_runs(q);
  }
};

void copy_plugin(const std::string& variant, const fs::path& to) {
  fs::create_directories(to.parent_path());
  fs::copy_file(asg::testing::test_plugin_dir(variant) / ("asg_metric_" + variant + ".so"), to, fs::copy_options::overwrite_existing);
}

TEST_F(WorkflowTest, ReproduceAgreesOnAnIdenticalRerunAndFailsOnAnAlteredPlugin) {
  const fs::path plugin = dir_ / "plugins" / "asg_metric_mean_pixel.so";
  copy_plugin("mean_pixel", plugin);
  std::ofstream(dir_ / "repro.toml") << fmt::format(R"(
base = ["tiny.toml"]
[[metrics]]
plugin = "caption_accuracy"
[[metrics]]
plugin = "frechet_pixel"
[[metrics]]
plugin = "mean_pixel"
[runtime]
plugin_path = ["plugins"]
threads = 0
)");
  // The run gets its threads as a sweep point does (ASG_THREADS, the config says 0), and a count this machine
  // would not choose by itself: the rerun must use the recorded count, or its sums split differently.
  const unsigned threads = std::thread::hardware_concurrency() == 1 ? 2 : 1;
  setenv("ASG_THREADS", std::to_string(threads).c_str(), 1);
  const Result original = run_asg("--allow-plugin-path run repro.toml", dir_);
  unsetenv("ASG_THREADS");
  ASSERT_EQ(original.code, 0) << original.output;
  const std::string id = runs().front().id;
  ASSERT_EQ(nlohmann::json::parse(runs().front().host_json)["threads"], threads);

  // From a leaderboard row's id (abbreviated) to a verdict in one command, from another folder: the plugin path,
  // relative to the experiment file, was recorded resolved.
  fs::create_directories(dir_ / "elsewhere");
  Result r = run_asg("--allow-plugin-path reproduce " + id.substr(0, id.size() - 2) + " --registry ../runs/registry.sqlite --runs-dir ../runs", dir_ / "elsewhere");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("REPRODUCED: all"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(fmt::format("identical values (CPU, deterministic, {} thread{} on both sides)", threads, threads == 1 ? "" : "s")), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("| mean_pixel |"), std::string::npos) << r.output;
  const auto reproductions = runs(asg::RunRole::Reproduction);
  ASSERT_EQ(reproductions.size(), 1u);
  EXPECT_EQ(reproductions[0].parent_run_id.value_or(""), id);
  EXPECT_EQ(reproductions[0].config_hash, runs().front().config_hash);
  EXPECT_EQ(nlohmann::json::parse(reproductions[0].host_json)["threads"], threads);
  // The rerun is a verdict, not a second entry: the leaderboard still has one run.
  Result lb = run_asg("leaderboard --benchmark e2e-bench --format json", dir_);
  ASSERT_EQ(lb.code, 0) << lb.output;
  EXPECT_EQ(nlohmann::json::parse(lb.output)["sections"][0]["rows"][0]["n"], 1) << lb.output;

  // The metric's library is swapped for an altered build: refused, naming the slot and both hashes ...
  copy_plugin("mean_pixel_altered", plugin);
  r = run_asg("--allow-plugin-path reproduce " + id, dir_);
  EXPECT_EQ(r.code, 2) << r.output;
  // Refused before the library is opened: its digest is not one the run recorded.
  EXPECT_NE(r.output.find(plugin.string() + " (sha256 " + asg::sha256_file(plugin).substr(0, 16) + ") is not a library run " + id +
                          " recorded"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--allow-plugin-drift"), std::string::npos) << r.output;
  EXPECT_EQ(runs(asg::RunRole::Reproduction).size(), 1u);  // nothing recorded
  // ... and, allowed to go ahead, judged: the altered metric fails, the others still pass.
  r = run_asg("--allow-plugin-path reproduce " + id + " --allow-plugin-drift", dir_);
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("NOT REPRODUCED: 1 of"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("allowed drift: slot metrics[2]"), std::string::npos) << r.output;
  const size_t row = r.output.find("| mean_pixel |");
  ASSERT_NE(row, std::string::npos) << r.output;
  EXPECT_NE(r.output.substr(row, r.output.find('\n', row) - row).find("FAIL"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| caption_accuracy |"), std::string::npos);

  r = run_asg("reproduce nope", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no run 'nope'"), std::string::npos) << r.output;
}

TEST_F(WorkflowTest, ALibraryThatAnExperimentOrAnImportedRunNamesIsNeverOpenedWithoutPermission) {
  // The probe library writes $ASG_TEST_MARKER when opened: "nothing was loaded" is observed.
  const fs::path marker = dir_ / "marker";
  setenv("ASG_TEST_MARKER", marker.c_str(), 1);
  const fs::path plugin = dir_ / "evil" / "asg_metric_mean_pixel.so";
  copy_plugin("mean_pixel", plugin);  // the honest library first: the run below records its digest
  std::ofstream(dir_ / "evil.toml") << "base = [\"tiny.toml\"]\n[[metrics]]\nplugin = \"caption_accuracy\"\n[[metrics]]\nplugin = "
                                       "\"mean_pixel\"\n[runtime]\nplugin_path = [\"evil\"]\n";
  fs::copy_file(asg::testing::test_plugin_dir("marker_misnamed") / "evil_marker.so", dir_ / "evil_marker.so");
  std::ofstream(dir_ / "misnamed.toml") << "base = [\"tiny.toml\"]\n[runtime]\nplugin_path = [\"evil_marker.so\"]\n";

  // A run that was allowed to, exported and imported elsewhere.
  ASSERT_EQ(run_asg("--allow-plugin-path run evil.toml --set train.steps=2", dir_).code, 0);
  const std::string id = runs().front().id;
  ASSERT_EQ(run_asg("runs export --all --out export.sqlite", dir_).code, 0);
  ASSERT_EQ(run_asg("runs import export.sqlite --registry other.sqlite", dir_).code, 0);
  // Now the folder the stored config names holds another library, which would run code when opened.
  fs::copy_file(asg::testing::test_plugin_dir("marker") / "asg_metric_mean_pixel_marker.so", plugin, fs::copy_options::overwrite_existing);

  for (const std::string& command : std::vector<std::string>{"validate evil.toml", "validate --build evil.toml", "run evil.toml",
                                                             "reproduce " + id + " --registry other.sqlite"}) {
    const Result r = run_asg(command, dir_);
    EXPECT_EQ(r.code, 2) << command << "\n" << r.output;
    EXPECT_NE(r.output.find("[runtime] plugin_path names " + (dir_ / "evil").string()), std::string::npos) << command << "\n" << r.output;
    EXPECT_NE(r.output.find("pass --allow-plugin-path"), std::string::npos) << command << "\n" << r.output;
    EXPECT_FALSE(fs::exists(marker)) << command;
  }
  // Allowed, the imported run's config still opens only the library the run recorded.
  Result r = run_asg("--allow-plugin-path reproduce " + id + " --registry other.sqlite", dir_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(plugin.string() + " (sha256 " + asg::sha256_file(plugin).substr(0, 16) + ") is not a library run " + id +
                          " recorded"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(marker));
  // A file not named asg_*.so is not opened, allowed or not.
  r = run_asg("--allow-plugin-path validate misnamed.toml", dir_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("is not named like a plugin library (asg_<kind>_<name>.so)"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(marker));
  // The probe does write its marker when it is opened: the checks above could have failed.
  EXPECT_EQ(run_asg("--allow-plugin-path validate evil.toml", dir_).code, 0);
  EXPECT_TRUE(fs::exists(marker));
  {
    asg::RunQuery reproductions;
    reproductions.role = asg::RunRole::Reproduction;
    EXPECT_EQ(asg::Registry(dir_ / "other.sqlite").list_runs(reproductions).size(), 0u);  // the refusals recorded nothing
  }
  unsetenv("ASG_TEST_MARKER");
}

TEST_F(WorkflowTest, AnInterruptedSweepResumesWithOnlyTheMissingPoints) {
  std::ofstream(dir_ / "sweep.toml") << R"(name = "lr-sweep"
experiment = "tiny.toml"
seeds = [0, 1]
[set]
"train.steps" = 6
[grid]
"train.lr" = [1e-3, 2e-3, 4e-3]
)";
  Result status = run_asg("sweep status sweep.toml", dir_);
  ASSERT_EQ(status.code, 0) << status.output;
  EXPECT_NE(status.output.find("6 PENDING"), std::string::npos) << status.output;

  // Start the sweep, let two points finish, then stop it as a scheduler would (SIGTERM).
  const pid_t pid = asg::testing::spawn({asg::testing::asg_binary().string(), "sweep", "sweep.toml"}, dir_, dir_ / "sweep.out");
  ASSERT_GT(pid, 0);
  bool two_done = false;
  for (int i = 0; i < 1200 && !two_done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(registry())) continue;
    try {
      size_t finished = 0;
      for (const auto& r : runs()) finished += r.status == asg::RunStatus::Finished ? 1 : 0;
      two_done = finished >= 2;
    } catch (const asg::Error&) {
    }
  }
  kill(pid, SIGTERM);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  ASSERT_TRUE(two_done) << asg::read_text_file(dir_ / "sweep.out");
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 130) << asg::read_text_file(dir_ / "sweep.out");
  const auto sweeps = runs(asg::RunRole::Sweep);
  ASSERT_EQ(sweeps.size(), 1u);
  EXPECT_EQ(sweeps[0].status, asg::RunStatus::Killed);
  std::map<std::string, std::string> finished_before;  // config hash -> run id
  for (const auto& r : runs()) {
    EXPECT_EQ(r.parent_run_id.value_or(""), sweeps[0].id);
    if (r.status == asg::RunStatus::Finished) finished_before[r.config_hash] = r.id;
    else EXPECT_EQ(r.status, asg::RunStatus::Killed) << r.id;  // the point that was running when the sweep stopped
  }
  ASSERT_GE(finished_before.size(), 2u);
  ASSERT_LT(finished_before.size(), 6u);

  Result rerun = run_asg("sweep sweep.toml", dir_);
  ASSERT_EQ(rerun.code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find(fmt::format("6 points, {} already FINISHED, {} to run", finished_before.size(), 6 - finished_before.size())),
            std::string::npos)
      << rerun.output;
  // Every point finished exactly once; those finished before were not run again.
  std::map<std::string, int> finished_per_config;
  for (const auto& r : runs())
    if (r.status == asg::RunStatus::Finished) ++finished_per_config[r.config_hash];
  EXPECT_EQ(finished_per_config.size(), 6u);
  for (const auto& [hash, n] : finished_per_config) EXPECT_EQ(n, 1) << hash;
  for (const auto& [hash, id] : finished_before) {
    asg::Registry reg(registry());
    EXPECT_EQ(reg.find_run(id)->status, asg::RunStatus::Finished);
  }
  EXPECT_EQ(runs(asg::RunRole::Sweep).front().status, asg::RunStatus::Finished);
  status = run_asg("sweep status sweep.toml", dir_);
  EXPECT_NE(status.output.find("6 FINISHED"), std::string::npos) << status.output;
  // A third run has nothing to do.
  rerun = run_asg("sweep sweep.toml", dir_);
  EXPECT_EQ(rerun.code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("6 already FINISHED, 0 to run"), std::string::npos) << rerun.output;

  // The ablation table: one row per learning rate, mean ± std over the two seeds.
  Result table = run_asg("leaderboard --benchmark e2e-bench --group-by train.lr --format json", dir_);
  ASSERT_EQ(table.code, 0) << table.output;
  const auto j = nlohmann::json::parse(table.output);
  ASSERT_EQ(j["sections"][0]["rows"].size(), 3u) << table.output;
  for (const auto& row : j["sections"][0]["rows"]) EXPECT_EQ(row["n"], 2);
  Result latex = run_asg("leaderboard --benchmark e2e-bench --group-by train.lr --format latex", dir_);
  EXPECT_NE(latex.output.find("\\toprule"), std::string::npos) << latex.output;
  EXPECT_NE(latex.output.find("\\textbf{"), std::string::npos) << latex.output;
}

TEST_F(WorkflowTest, SweepsKeepGoingPastFailuresUnlessFailFastAndSplitTheCoresBetweenJobs) {
  // "cuda:63" loads (the device is checked when the run starts) and then fails on any machine (no CUDA, or not 64
  // GPUs): a point that fails after validation, as a crashed run would.
  std::ofstream(dir_ / "failing.toml") << "experiment = \"tiny.toml\"\nseeds = [0, 1]\n[set]\n\"train.steps\" = 2\n"
                                           "[grid]\n\"runtime.device\" = [\"cuda:63\", \"cpu\"]\n";
  Result fast = run_asg("sweep failing.toml --fail-fast", dir_);
  EXPECT_EQ(fast.code, 1) << fast.output;
  EXPECT_NE(fast.output.find("--fail-fast: starting no more points"), std::string::npos) << fast.output;
  EXPECT_NE(fast.output.find("0 finished now, 0 already finished, 1 failed, 0 stopped, 3 not run"), std::string::npos) << fast.output;
  EXPECT_EQ(runs(asg::RunRole::Sweep).front().status, asg::RunStatus::Failed);

  Result all = run_asg("sweep failing.toml", dir_);
  EXPECT_EQ(all.code, 1) << all.output;
  EXPECT_NE(all.output.find("2 finished now, 0 already finished, 2 failed"), std::string::npos) << all.output;
  // Rerun: the finished points are skipped, the failed ones tried again.
  Result again = run_asg("sweep failing.toml", dir_);
  EXPECT_NE(again.output.find("4 points, 2 already FINISHED, 2 to run"), std::string::npos) << again.output;

  // Two jobs on this machine: each point gets half the cores through ASG_THREADS (threads = 0 means "my share").
  std::ofstream(dir_ / "jobs.toml") << "experiment = \"tiny.toml\"\nseeds = [3, 4]\n[set]\n\"train.steps\" = 2\n\"runtime.threads\" = 0\n";
  Result jobs = run_asg("sweep jobs.toml --jobs 2", dir_);
  ASSERT_EQ(jobs.code, 0) << jobs.output;
  const int64_t share = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()) / 2);
  int checked = 0;
  for (const auto& r : runs())
    if (r.seed == 3 || r.seed == 4) {
      EXPECT_EQ(nlohmann::json::parse(r.host_json)["threads"], share) << r.host_json;
      ++checked;
    }
  EXPECT_EQ(checked, 2);
}

TEST_F(WorkflowTest, SweepFilesAreCheckedWithFileAndLine) {
  std::ofstream(dir_ / "bad_key.toml") << "experiment = \"tiny.toml\"\n[grid]\n\"temporal.plugn\" = [\"sti\"]\n";
  Result r = run_asg("sweep bad_key.toml", dir_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("bad_key.toml:3:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("temporal.plugn"), std::string::npos) << r.output;
  std::ofstream(dir_ / "bad_zip.toml") << "experiment = \"tiny.toml\"\n[zip]\n\"train.lr\" = [1e-3, 2e-3]\n\"train.steps\" = [1]\n";
  r = run_asg("sweep bad_zip.toml", dir_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("bad_zip.toml:4:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("need one length"), std::string::npos) << r.output;
  std::ofstream(dir_ / "bad_value.toml") << "experiment = \"tiny.toml\"\n[grid]\n\"temporal.plugin\" = [\"temporal_conv\", \"stii\"]\n";
  r = run_asg("sweep bad_value.toml", dir_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("bad_value.toml:3:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"stii\""), std::string::npos) << r.output;
  std::ofstream(dir_ / "typo.toml") << "experiment = \"tiny.toml\"\n[grids]\n";
  r = run_asg("sweep typo.toml", dir_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("Did you mean 'grid'?"), std::string::npos) << r.output;
  // An axis over experiment files: arms that differ in more than one key.
  std::ofstream(dir_ / "wide.toml") << "base = [\"tiny.toml\"]\nname = \"wide\"\n[backbone]\nchannels = [16, 32]\n";
  // From a folder of sweeps: the experiments are named (and their runs record them) without "sweeps/../".
  fs::create_directories(dir_ / "sweeps");
  std::ofstream(dir_ / "sweeps" / "files.toml") << "experiment = [\"../tiny.toml\", \"../wide.toml\"]\nseeds = [0, 1]\n";
  r = run_asg("sweep status sweeps/files.toml", dir_);
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("4 points of tiny.toml, wide.toml"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("4 PENDING"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("experiment=wide.toml runtime.seed=1"), std::string::npos) << r.output;
  std::ofstream(dir_ / "missing.toml") << "experiment = [\"tiny.toml\",\n  \"nope.toml\"]\n";
  r = run_asg("sweep status missing.toml", dir_);
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("missing.toml:2:3: experiment 'nope.toml' does not exist"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(registry()));  // nothing ran, nothing recorded
}

TEST_F(WorkflowTest, CompareRunsShowRmAndExportImport) {
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=0", dir_).code, 0);
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=0 --set runtime.seed=1 --set sampler.steps=2", dir_).code, 0);
  const auto all = runs();
  ASSERT_EQ(all.size(), 2u);
  const std::string a = all[1].id, b = all[0].id;

  Result cmp = run_asg(fmt::format("compare {} {}", a, b.substr(0, 20)), dir_);
  ASSERT_EQ(cmp.code, 0) << cmp.output;
  EXPECT_NE(cmp.output.find("| runtime.seed | 0 | 1 |"), std::string::npos) << cmp.output;
  EXPECT_NE(cmp.output.find("| sampler.steps | 3 | 2 |"), std::string::npos) << cmp.output;
  EXPECT_EQ(cmp.output.find("| train.lr |"), std::string::npos) << cmp.output;  // equal keys are left out
  EXPECT_NE(cmp.output.find("## Plugins: no difference"), std::string::npos) << cmp.output;
  EXPECT_NE(cmp.output.find("## Results ("), std::string::npos) << cmp.output;
  // Both ids start with the date: ambiguous, and the candidates are listed.
  Result ambiguous = run_asg("compare " + a.substr(0, 4) + " " + b, dir_);
  EXPECT_EQ(ambiguous.code, 2) << ambiguous.output;
  EXPECT_NE(ambiguous.output.find("is ambiguous"), std::string::npos) << ambiguous.output;
  EXPECT_NE(ambiguous.output.find(a), std::string::npos) << ambiguous.output;
  EXPECT_NE(ambiguous.output.find(b), std::string::npos) << ambiguous.output;

  Result show = run_asg("runs show " + b.substr(0, 20), dir_);
  ASSERT_EQ(show.code, 0) << show.output;
  EXPECT_NE(show.output.find("run " + b + "  FINISHED"), std::string::npos) << show.output;
  EXPECT_NE(show.output.find("caption_accuracy"), std::string::npos) << show.output;

  // Export both, import twice into another registry: no duplicates.
  ASSERT_EQ(run_asg("runs export --all --out both.sqlite", dir_).code, 0);
  Result first = run_asg("runs import both.sqlite --registry other.sqlite", dir_);
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("2 imported, 0 already here"), std::string::npos) << first.output;
  Result second = run_asg("runs import both.sqlite --registry other.sqlite", dir_);
  EXPECT_NE(second.output.find("0 imported, 2 already here"), std::string::npos) << second.output;
  EXPECT_EQ(asg::Registry(dir_ / "other.sqlite").list_runs().size(), 2u);
  Result lb = run_asg("leaderboard --registry other.sqlite --runs", dir_);
  EXPECT_NE(lb.output.find(a), std::string::npos) << lb.output;

  // rm hides, --purge also deletes the folder; rows stay.
  ASSERT_TRUE(fs::exists(dir_ / "runs" / a));
  Result rm = run_asg("runs rm " + a + " --purge", dir_);
  ASSERT_EQ(rm.code, 0) << rm.output;
  EXPECT_FALSE(fs::exists(dir_ / "runs" / a));
  Result listing = run_asg("runs", dir_);
  EXPECT_EQ(listing.output.find(a), std::string::npos) << listing.output;
  listing = run_asg("runs list --deleted", dir_);
  EXPECT_NE(listing.output.find(a), std::string::npos) << listing.output;
  listing = run_asg("runs list --where runtime.seed=1", dir_);
  EXPECT_NE(listing.output.find(b), std::string::npos) << listing.output;
  Result bad = run_asg("runs list --where runtime.sed=1", dir_);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.output.find("Did you mean 'runtime.seed'?"), std::string::npos) << bad.output;
}

}  // namespace
