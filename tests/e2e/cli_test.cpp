// End-to-end: the real `asg` binary on a reduced quickstart, checked through the SQLite registry it
// writes and the GIFs it leaves in the run directory.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "asg/error.h"
#include "asg/hash.h"
#include "asg/media/gif.h"
#include "asg/media/sticker_file.h"
#include "asg/registry.h"
#include "asg/util.h"
#include "asg_cli.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

using Result = asg::testing::CliResult;
using asg::testing::run_asg;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = asg::testing::make_temp_dir("e2e");
    // A reduced quickstart: the real experiment file with a tiny model and budget.
    std::ofstream(dir_ / "tiny.toml") << asg::testing::reduced_quickstart(
        "tiny", "[sampler]\nsteps = 4\n[train]\nsteps = 30\nbatch_size = 4\nlog_every = 5\n"
                "[eval]\nnum_samples = 6\nbatch_size = 3\nsave_gifs = 4\ngif_scale = 2\n");
  }
  void TearDown() override {
    ::unsetenv("ASG_BENCHMARK_PATH");
    fs::remove_all(dir_);
  }
  fs::path registry() const { return dir_ / "runs" / "registry.sqlite"; }

  // Starts `asg run tiny.toml` (by default with a budget it will not finish; or any other asg command)
  // and waits until the newest run is RUNNING and has logged `history` training-loss points. Returns its pid, or -1
  // (after killing it) if it never got there.
  pid_t start_endless_run(size_t history,
                          std::vector<std::string> budget = {"--set", "train.steps=100000", "--set", "train.log_every=1"},
                          std::vector<std::string> command = {"run", "tiny.toml"}) {
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      if (chdir(dir_.c_str()) != 0) _exit(99);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      std::vector<std::string> args = {"asg"};
      args.insert(args.end(), command.begin(), command.end());
      args.insert(args.end(), budget.begin(), budget.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(asg::testing::asg_binary().c_str(), argv.data());
      _exit(98);
    }
    for (int i = 0; i < 600; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!fs::exists(registry())) continue;
      try {
        asg::Registry reg(registry());
        auto runs = reg.list_runs();
        if (!runs.empty() && runs[0].status == asg::RunStatus::Running &&
            reg.metric_history(runs[0].id, "train/loss").size() >= history)
          return pid;
      } catch (const asg::Error&) {
      }
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }

  // SIGKILLs the run (no handler can mark it) and returns the id of the newest run in the registry, which
  // must therefore still read RUNNING; "" if it does not. With `own_death`, first waits up to a minute for
  // the process to die by itself (a failpoint that SIGKILLs it): killing it from here could beat the
  // failpoint to it.
  std::string kill_hard(pid_t pid, bool own_death = false) {
    bool exited = false;
    for (int i = 0; own_death && i < 600 && !exited; ++i) {
      exited = waitpid(pid, nullptr, WNOHANG) == pid;
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    asg::Registry reg(registry());
    auto runs = reg.list_runs();
    return !runs.empty() && runs[0].status == asg::RunStatus::Running ? runs[0].id : "";
  }

  // latent.toml: tiny.toml in the latent space of a frame_vae (16x16 frames -> 8x8x4 latents) that asg run
  // trains for 40 steps first.
  void write_latent_experiment(const std::string& extra = "") {
    std::ofstream(dir_ / "latent.toml") << "base = [\"tiny.toml\"]\n[autoencoder]\nplugin = \"frame_vae\"\nchannels = [8, 16]\n"
                                           "train_steps = 40\nlr = 0.003\n"
                                        << extra;
  }

  // Benchmark definitions in defs/, which the asg processes of the test find through ASG_BENCHMARK_PATH (unset
  // in TearDown): e2e-def is tiny.toml's own protocol; e2e-def-more samples 8 clips in 2 steps and ranks by the
  // Fréchet distance; e2e-def-8px pins data of another size.
  void write_definitions() {
    fs::create_directories(dir_ / "defs");
    std::ofstream(dir_ / "defs/a.toml") << "[benchmark]\nname = \"e2e-def\"\nversion = \"1\"\n[eval]\nnum_samples = 6\n"
                                           "[sampler]\nplugin = \"ddim\"\nsteps = 4\n[[metrics]]\nplugin = \"caption_accuracy\"\n"
                                           "[[metrics]]\nplugin = \"frechet_pixel\"\n";
    std::ofstream(dir_ / "defs/b.toml") << "[benchmark]\nname = \"e2e-def-more\"\nversion = \"1\"\nrank_by = \"frechet_pixel\"\n"
                                           "[eval]\nnum_samples = 8\n[sampler]\nplugin = \"ddim\"\nsteps = 2\n"
                                           "[[metrics]]\nplugin = \"frechet_pixel\"\n";
    std::ofstream(dir_ / "defs/c.toml") << "[benchmark]\nname = \"e2e-def-8px\"\nversion = \"1\"\n[dataset]\n"
                                           "plugin = \"synthetic_stickers\"\nsize = 8\n";
    ::setenv("ASG_BENCHMARK_PATH", (dir_ / "defs").c_str(), 1);  // the asg processes inherit it
  }

  fs::path dir_;
};

}  // namespace

TEST_F(CliTest, ReducedQuickstartRecordsTheRunAndWritesPlayableGifs) {
  Result r = run_asg("run tiny.toml", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("FINISHED"), std::string::npos);

  asg::Registry reg(registry());
  auto runs = reg.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  const auto& run = runs[0];
  EXPECT_EQ(run.status, asg::RunStatus::Finished);
  EXPECT_EQ(run.name, "tiny");
  EXPECT_EQ(run.benchmark, "e2e-bench");
  EXPECT_EQ(run.config_hash.size(), 64u);
  EXPECT_NE(run.host_json.find("\"torch\""), std::string::npos);
  fs::path run_dir = dir_ / "runs" / run.id;
  EXPECT_EQ(asg::read_text_file(run_dir / "config.toml"), run.config_text);

  // The hash recorded is the one `asg validate` prints for the same file.
  Result v = run_asg("validate tiny.toml", dir_);
  ASSERT_EQ(v.code, 0) << v.output;
  EXPECT_NE(v.output.find("config hash " + run.config_hash), std::string::npos);

  auto plugins = reg.plugins(run.id);
  ASSERT_EQ(plugins.size(), 7u);  // dataset, text_encoder, backbone, temporal, sampler, 2 metrics
  EXPECT_EQ(plugins[2].slot, "backbone");
  EXPECT_EQ(plugins[2].name, "unet3d");
  for (const auto& p : plugins) EXPECT_EQ(p.library_sha256, asg::sha256_file(p.library)) << p.library;

  auto loss = reg.metric_history(run.id, "train/loss");
  ASSERT_EQ(loss.size(), 6u);  // every 5 of 30 steps
  EXPECT_EQ(loss.back().step, 30);
  std::map<std::string, double> results;
  for (const auto& x : reg.results(run.id)) results[x.key] = x.value;
  EXPECT_TRUE(results.count("caption_accuracy"));
  EXPECT_TRUE(results.count("frechet_pixel"));
  EXPECT_GE(results["caption_accuracy"], 0.0);
  EXPECT_LE(results["caption_accuracy"], 1.0);

  int gifs = 0;
  for (const auto& a : reg.artifacts(run.id)) {
    fs::path file = run_dir / a.path;
    ASSERT_TRUE(fs::exists(file)) << a.path;
    EXPECT_EQ(asg::sha256_file(file), a.sha256) << a.path;
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(file)), a.bytes);
    if (file.extension() != ".gif") continue;
    ++gifs;
    auto anim = asg::read_gif(file);
    EXPECT_EQ(anim.frames.size(), 8u) << a.path;
    EXPECT_EQ(anim.loop_count, 0);
    EXPECT_EQ(anim.frames[0].duration_ms, 250);  // 4 fps
    if (a.path != "samples/grid.gif") {
      EXPECT_EQ(anim.width, 32);
      EXPECT_EQ(anim.height, 32);
    }
  }
  EXPECT_EQ(gifs, 5);  // 4 samples + grid
  EXPECT_TRUE(fs::exists(run_dir / "checkpoints" / "final.pt"));
  EXPECT_TRUE(fs::exists(run_dir / "run.log"));

  Result lb = run_asg("leaderboard --benchmark e2e-bench", dir_);
  ASSERT_EQ(lb.code, 0) << lb.output;
  EXPECT_NE(lb.output.find("| 1 | " + run.id + " | tiny |"), std::string::npos) << lb.output;
  EXPECT_NE(lb.output.find(run.config_hash.substr(0, 12)), std::string::npos);
  Result csv = run_asg("leaderboard --format csv", dir_);
  EXPECT_EQ(csv.code, 0);
  EXPECT_NE(csv.output.find(run.config_hash), std::string::npos);
}

TEST_F(CliTest, SameConfigOnTheSameMachineGivesTheSameNumbers) {
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=10", dir_).code, 0);
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=10", dir_).code, 0);
  asg::Registry reg(registry());
  auto runs = reg.list_runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].config_hash, runs[1].config_hash);
  auto a = reg.metric_history(runs[0].id, "train/loss"), b = reg.metric_history(runs[1].id, "train/loss");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].value, b[i].value) << "step " << a[i].step;
  auto ra = reg.results(runs[0].id), rb = reg.results(runs[1].id);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].value, rb[i].value) << ra[i].key;
}

TEST_F(CliTest, ACheckpointEvaluatedWithoutTrainingReproducesItsRun) {
  // Train, then evaluate the run's final checkpoint with steps = 0: the weights it samples with are its
  // EMA, so the numbers are the trained run's, exactly.
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=10", dir_).code, 0);
  asg::Registry reg(registry());
  auto trained = reg.list_runs().front();
  fs::path checkpoint = dir_ / "runs" / trained.id / "checkpoints" / "final.pt";
  Result r = run_asg("run tiny.toml --set train.steps=0 --set train.init_checkpoint=" + checkpoint.string(), dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("weights from " + checkpoint.string() + " (sha256 " + asg::sha256_file(checkpoint) + ")"),
            std::string::npos)
      << r.output;
  auto evaluated = reg.list_runs().front();
  auto a = reg.results(trained.id), b = reg.results(evaluated.id);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].value, b[i].value) << a[i].key;

  // A file that is not a checkpoint, and a checkpoint of another model: exit 2, nothing recorded.
  std::ofstream(dir_ / "junk.pt") << "not a checkpoint";
  Result junk = run_asg("run tiny.toml --set train.init_checkpoint=junk.pt", dir_);
  EXPECT_EQ(junk.code, 2);
  EXPECT_NE(junk.output.find("junk.pt: not a checkpoint LibTorch can read"), std::string::npos) << junk.output;
  Result other = run_asg("run tiny.toml --set 'backbone.channels=[8, 8]' --set train.init_checkpoint=" + checkpoint.string(), dir_);
  EXPECT_EQ(other.code, 2);
  EXPECT_NE(other.output.find("in the checkpoint but"), std::string::npos) << other.output;
  EXPECT_EQ(reg.list_runs().size(), 2u);
}

TEST_F(CliTest, InvalidExperimentExitsTwoAndRecordsNothing) {
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=0 --set eval.num_samples=2", dir_).code, 0);
  std::ofstream(dir_ / "bad.toml") << "base = [\"tiny.toml\"]\n[backbone]\nchanels = [8]\n";
  Result r = run_asg("run bad.toml", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("error: bad.toml:3:1: [backbone] unknown key 'chanels'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Did you mean 'channels'?"), std::string::npos);
  // A plugin refusing the data is also caught before anything is recorded.
  Result m = run_asg("run tiny.toml --set metrics.1.pool=3", dir_);
  EXPECT_EQ(m.code, 2) << m.output;
  EXPECT_NE(m.output.find("error: tiny.toml: [metrics[1]] metric 'frechet_pixel': pool = 3 must divide the frame size 16x16"),
            std::string::npos)
      << m.output;
  // A temporal module that cannot work at an insertion point names the key, the value and the point.
  Result t = run_asg("run tiny.toml --set temporal.plugin=temporal_attention --set temporal.heads=3", dir_);
  EXPECT_EQ(t.code, 2) << t.output;
  EXPECT_NE(t.output.find("error: tiny.toml: [temporal] temporal 'temporal_attention': heads = 3 does not divide the 8 channels at "
                          "insertion point 'down0_0' (valid: a divisor of every level's channels, e.g. 1) (temporal "
                          "insertion point 'down0_0' of [backbone] backbone 'unet3d': 8 channels, 8 frames, 16x16)\n"),
            std::string::npos)
      << t.output;
  // A metric's declared requirements are checked by the core, which names file, section and plugin.
  std::ofstream(dir_ / "novocab.toml") << fmt::format(
      "base = [\"tiny.toml\"]\n[dataset]\n__replace__ = true\nplugin = \"lifetime_probe\"\n"
      "[runtime]\nplugin_path = [\"{}\"]\n",
      asg::testing::test_plugin_dir("lifetime").string());
  Result v = run_asg("run novocab.toml", dir_);
  EXPECT_EQ(v.code, 2) << v.output;
  EXPECT_NE(v.output.find("error: novocab.toml: [metrics[0]] metric 'caption_accuracy' requires the label keys colour, "
                          "shape, direction (missing: colour, shape, direction); [dataset] plugin 'lifetime_probe' provides "
                          "no labels. Pick a dataset that provides it, or another metric plugin.\n"),
            std::string::npos)
      << v.output;
  asg::Registry reg(registry());
  EXPECT_EQ(reg.list_runs().size(), 1u);  // only the first, valid run
}

TEST_F(CliTest, AFailingRunIsRecordedFailedWithItsHistory) {
  std::ofstream(dir_ / "fail.toml") << fmt::format(R"(
base = ["tiny.toml"]
[[metrics]]
plugin = "fail_on_compute"
[benchmark]
rank_by = "fail_on_compute"
[runtime]
plugin_path = ["{}"]
)",
                                                   asg::testing::test_plugin_dir("fail_on_compute").string());
  Result r = run_asg("run fail.toml --set train.steps=10", dir_);
  ASSERT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("fail_on_compute: deliberate failure for the test"), std::string::npos) << r.output;
  asg::Registry reg(registry());
  auto runs = reg.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, asg::RunStatus::Failed);
  EXPECT_EQ(runs[0].error, "fail_on_compute: deliberate failure for the test");
  EXPECT_EQ(reg.metric_history(runs[0].id, "train/loss").size(), 2u);
  Result lb = run_asg("leaderboard --benchmark e2e-bench", dir_);
  EXPECT_EQ(lb.code, 2);  // failed runs are not on the leaderboard
  Result listing = run_asg("runs --status FAILED", dir_);
  EXPECT_NE(listing.output.find(runs[0].id), std::string::npos);
}

TEST_F(CliTest, SigtermMarksTheRunKilledAndKeepsItsHistory) {
  const pid_t pid = start_endless_run(3);
  ASSERT_GT(pid, 0) << "the run did not start training";
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  asg::Registry reg(registry());
  auto runs = reg.list_runs();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].status, asg::RunStatus::Killed);
  EXPECT_EQ(runs[0].error, "terminated by SIGTERM");
  const auto history = reg.metric_history(runs[0].id, "train/loss");
  ASSERT_GE(history.size(), 3u);
  // What was trained is kept: a checkpoint of the last step finished (log_every = 1: the last point).
  const auto checkpoint = dir_ / "runs" / runs[0].id / "checkpoints" / fmt::format("step_{:07}.pt", history.back().step);
  EXPECT_TRUE(fs::exists(checkpoint)) << checkpoint;
}

TEST_F(CliTest, RunsGcFindsARunKilledWithSigkillAtOnce) {
  const pid_t pid = start_endless_run(2);
  ASSERT_GT(pid, 0) << "the run did not start training";
  // While it trains, gc leaves it alone.
  Result alive = run_asg("runs gc", dir_);
  EXPECT_EQ(alive.code, 0) << alive.output;
  EXPECT_NE(alive.output.find("every RUNNING run is alive (1 running)"), std::string::npos) << alive.output;
  // SIGKILL: no handler runs, the row stays RUNNING ...
  const std::string id = kill_hard(pid);
  ASSERT_FALSE(id.empty()) << "after SIGKILL the registry should hold one RUNNING run";
  // ... until gc, which needs no heartbeat timeout on the same host.
  Result gc = run_asg("runs gc", dir_);
  EXPECT_EQ(gc.code, 0) << gc.output;
  EXPECT_NE(gc.output.find("marked KILLED " + id + " (tiny): its process " + std::to_string(pid)), std::string::npos)
      << gc.output;
  asg::Registry reg(registry());
  auto run = reg.find_run(id);
  EXPECT_EQ(run->status, asg::RunStatus::Killed);
  EXPECT_GE(reg.metric_history(id, "train/loss").size(), 2u);  // history kept
  // It never wrote a checkpoint (checkpoint_every = 0): resume says so and what to do instead.
  Result resume = run_asg("resume " + id, dir_);
  EXPECT_EQ(resume.code, 2) << resume.output;
  EXPECT_NE(resume.output.find("holds no step checkpoint to resume from"), std::string::npos) << resume.output;
}

TEST_F(CliTest, SigkilledRunsResumeToTheSameWeightsAndMetrics) {
  // 64 training stickers: a new epoch (and a new permutation) every 16 steps, so the data order's own
  // random stream has to survive the kill too.
  // The runs get their threads as sweep points do (threads = 0 and ASG_THREADS), a count other than this machine's
  // default; the resumed attempts, started without ASG_THREADS, must take it from the record, or the sums split
  // differently from the uninterrupted run's.
  const std::vector<std::string> args = {"--set", "train.steps=300", "--set", "train.checkpoint_every=100",
                                         "--set", "train.log_every=1", "--set", "dataset.train_size=64", "--set", "runtime.threads=0"};
  const std::string threads = std::thread::hardware_concurrency() == 1 ? "2" : "1";
  setenv("ASG_THREADS", threads.c_str(), 1);
  std::string budget;
  for (const auto& a : args) budget += " " + a;
  // The reference: the same experiment, never interrupted, in a registry of its own.
  Result reference = run_asg("run tiny.toml" + budget + " --registry ref.sqlite --runs-dir ref", dir_);
  ASSERT_EQ(reference.code, 0) << reference.output;
  asg::Registry ref_reg(dir_ / "ref.sqlite");
  const auto ref_run = ref_reg.list_runs().at(0);
  auto final_checkpoint_sha = [](const asg::Registry& reg, const std::string& run) {
    for (const auto& a : reg.artifacts(run))
      if (a.path == "checkpoints/final.pt") return a.sha256;
    return std::string("(no final.pt)");
  };

  // Every step once, with the uninterrupted run's values; the same final weights, EMA, optimizer state
  // and RNG streams (final.pt byte for byte); the same metrics, exactly.
  auto expect_as_if_never_killed = [&](const asg::Registry& reg, const asg::RunRecord& attempt) {
    EXPECT_EQ(attempt.status, asg::RunStatus::Finished);
    const auto history = reg.metric_history(attempt.id, "train/loss");
    const auto ref_history = ref_reg.metric_history(ref_run.id, "train/loss");
    ASSERT_EQ(history.size(), 300u);
    ASSERT_EQ(ref_history.size(), 300u);
    for (size_t i = 0; i < history.size(); ++i) {
      ASSERT_EQ(history[i].step, static_cast<int64_t>(i + 1));
      ASSERT_EQ(history[i].value, ref_history[i].value) << "train/loss at step " << i + 1;
    }
    EXPECT_EQ(final_checkpoint_sha(reg, attempt.id), final_checkpoint_sha(ref_reg, ref_run.id));
    const auto results = reg.results(attempt.id), ref_results = ref_reg.results(ref_run.id);
    ASSERT_EQ(results.size(), ref_results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      EXPECT_EQ(results[i].key, ref_results[i].key);
      EXPECT_EQ(results[i].value, ref_results[i].value) << results[i].key;
    }
    EXPECT_EQ(attempt.method_hash, ref_run.method_hash);
    EXPECT_EQ(attempt.protocol_hash, ref_run.protocol_hash);
  };
  auto newest = [&](const asg::Registry& reg) { return reg.list_runs().at(0); };

  // 1. Kill -9 after the first checkpoint (step 100), somewhere past step 130.
  pid_t pid = start_endless_run(130, args);
  unsetenv("ASG_THREADS");
  ASSERT_GT(pid, 0) << "the run did not get past step 130";
  const std::string killed_id = kill_hard(pid);
  ASSERT_FALSE(killed_id.empty()) << "the run ended before the kill; make it longer";
  Result resumed = run_asg("resume " + killed_id, dir_);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming run " + killed_id + " (attempt 2) from"), std::string::npos) << resumed.output;
  {
    asg::Registry reg(registry());
    EXPECT_EQ(reg.find_run(killed_id)->status, asg::RunStatus::Killed);  // found dead on the way
    const asg::RunRecord attempt = newest(reg);
    EXPECT_EQ(attempt.parent_run_id.value_or(""), killed_id);
    EXPECT_EQ(attempt.attempt, 2);
    EXPECT_EQ(fs::path(attempt.resumed_from.value_or("")).filename(), "step_0000100.pt");
    EXPECT_EQ(nlohmann::json::parse(attempt.host_json)["threads"], std::stoi(threads));
    expect_as_if_never_killed(reg, attempt);
    // Nothing left to resume: a clear refusal.
    Result again = run_asg("resume " + attempt.id, dir_);
    EXPECT_EQ(again.code, 2);
    EXPECT_NE(again.output.find("FINISHED; there is nothing to resume"), std::string::npos) << again.output;
  }

  // 2. Killed while writing the step-200 checkpoint (the failpoint SIGKILLs it with the file half
  //    written), resumed from step 100, killed again past step 250, resumed again from step 200.
  setenv("ASG_FAILPOINT_KILL_IN_CHECKPOINT_WRITE", "200", 1);
  setenv("ASG_THREADS", threads.c_str(), 1);
  pid = start_endless_run(200, args);
  unsetenv("ASG_THREADS");
  unsetenv("ASG_FAILPOINT_KILL_IN_CHECKPOINT_WRITE");
  ASSERT_GT(pid, 0);
  const std::string torn_id = kill_hard(pid, /*own_death=*/true);
  ASSERT_FALSE(torn_id.empty());
  const fs::path torn_dir = dir_ / "runs" / torn_id / "checkpoints";
  EXPECT_TRUE(fs::exists(torn_dir / "step_0000200.pt.tmp")) << "the failpoint did not fire during the write";
  EXPECT_FALSE(fs::exists(torn_dir / "step_0000200.pt"));
  pid = start_endless_run(250, {}, {"resume", torn_id});
  ASSERT_GT(pid, 0) << "the resumed attempt did not get past step 250";
  const std::string second_id = kill_hard(pid);
  ASSERT_FALSE(second_id.empty());
  Result third = run_asg("resume " + second_id, dir_);
  ASSERT_EQ(third.code, 0) << third.output;
  {
    asg::Registry reg(registry());
    const asg::RunRecord second = *reg.find_run(second_id);
    EXPECT_EQ(second.parent_run_id.value_or(""), torn_id);
    EXPECT_EQ(fs::path(second.resumed_from.value_or("")).filename(), "step_0000100.pt");
    const asg::RunRecord attempt = newest(reg);
    EXPECT_EQ(attempt.attempt, 3);
    EXPECT_EQ(attempt.parent_run_id.value_or(""), second_id);
    EXPECT_EQ(fs::path(attempt.resumed_from.value_or("")).filename(), "step_0000200.pt");
    expect_as_if_never_killed(reg, attempt);
  }

  Result unknown = run_asg("resume 20990101-000000-000000", dir_);
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.output.find("no run '20990101-000000-000000'"), std::string::npos) << unknown.output;
}

TEST_F(CliTest, TheLeaderboardRanksOnlyRunsMeasuredUnderTheSameProtocol) {
  // Two evaluations of the untrained model: 6 samples (the experiment's protocol) and 4.
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=0 --set eval.num_samples=4", dir_).code, 0);
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=0 --set runtime.seed=1", dir_).code, 0);
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=0 --set runtime.seed=2", dir_).code, 0);
  asg::Registry reg(registry());
  const auto runs = reg.list_runs();  // newest first
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].protocol_hash, runs[1].protocol_hash);
  EXPECT_NE(runs[0].protocol_hash, runs[2].protocol_hash);
  EXPECT_NE(runs[0].method_hash, runs[1].method_hash);  // other seeds
  // By default the two seeds are one row (n = 2, mean ± std); --runs lists every run.
  Result grouped = run_asg("leaderboard --benchmark e2e-bench", dir_);
  ASSERT_EQ(grouped.code, 0) << grouped.output;
  EXPECT_NE(grouped.output.find(fmt::format("| 1 | {} | tiny | 2 | 1 2 |", runs[0].id)), std::string::npos) << grouped.output;
  Result lb = run_asg("leaderboard --benchmark e2e-bench --runs", dir_);
  ASSERT_EQ(lb.code, 0) << lb.output;
  // The newest run's protocol is ranked: its two runs, in one table; the 4-sample run apart, with the field
  // that makes it incomparable.
  const size_t other = lb.output.find("## Other protocol " + runs[2].protocol_hash.substr(0, 12));
  ASSERT_NE(other, std::string::npos) << lb.output;
  EXPECT_NE(lb.output.find("eval.num_samples = 4 (above: 6)", other), std::string::npos) << lb.output;
  const size_t ranked = lb.output.find("under protocol " + runs[0].protocol_hash.substr(0, 12));
  ASSERT_NE(ranked, std::string::npos) << lb.output;
  EXPECT_LT(ranked, other);
  for (int i : {0, 1}) {
    const size_t row = lb.output.find(runs[i].id);
    EXPECT_TRUE(row > ranked && row < other) << runs[i].id << "\n" << lb.output;
  }
  EXPECT_GT(lb.output.find(runs[2].id), other);
}

TEST_F(CliTest, EvalAddsAResultSetUnderABenchmarkWithoutRetraining) {
  write_definitions();
  Result held = run_asg("validate tiny.toml --set benchmark.name=e2e-def", dir_);
  EXPECT_NE(held.output.find("# benchmark e2e-def version 1: held to its definition " + (dir_ / "defs/a.toml").string()),
            std::string::npos)
      << held.output;
  EXPECT_NE(run_asg("validate tiny.toml", dir_).output.find("# benchmark e2e-bench: ad hoc (no definition of that name"),
            std::string::npos);
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=10 --set benchmark.name=e2e-def", dir_).code, 0);
  asg::Registry reg(registry());
  const auto trained = reg.list_runs().front();

  // Under its own protocol: the same numbers, exactly (the EMA weights of final.pt, the same seeded sampling).
  Result same = run_asg("eval " + trained.id + " --benchmark e2e-def", dir_);
  ASSERT_EQ(same.code, 0) << same.output;
  auto sets = reg.result_sets(trained.id);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].status, asg::RunStatus::Finished);
  EXPECT_EQ(sets[0].protocol_hash, trained.protocol_hash);
  const auto own = reg.results(trained.id), again = reg.result_set_values(sets[0].id);
  ASSERT_EQ(own.size(), again.size());
  for (size_t i = 0; i < own.size(); ++i) EXPECT_EQ(own[i].value, again[i].value) << own[i].key;

  // Under another protocol: a result set the leaderboard of that benchmark shows, with its samples and log.
  Result more = run_asg("eval " + trained.id + " --benchmark e2e-def-more --set eval.save_gifs=2", dir_);
  ASSERT_EQ(more.code, 0) << more.output;
  sets = reg.result_sets(trained.id);
  ASSERT_EQ(sets.size(), 2u);
  const auto& set = sets[0];  // newest first
  EXPECT_NE(set.protocol_hash, trained.protocol_hash);
  EXPECT_NE(set.protocol_json.find(R"("num_samples":8)"), std::string::npos) << set.protocol_json;
  const fs::path out = dir_ / "runs" / trained.id / "evals" / std::to_string(set.id);
  EXPECT_TRUE(fs::exists(out / "samples" / "grid.gif"));
  EXPECT_TRUE(fs::exists(out / "eval.log"));
  EXPECT_EQ(asg::read_text_file(out / "config.toml").find("steps = 2") != std::string::npos, true);
  bool recorded = false;
  for (const auto& a : reg.artifacts(trained.id)) recorded |= a.path == "evals/" + std::to_string(set.id) + "/metrics.json";
  EXPECT_TRUE(recorded);
  EXPECT_EQ(reg.results(trained.id).size(), own.size());  // the run's own results are untouched
  Result lb = run_asg("leaderboard --benchmark e2e-def-more", dir_);
  ASSERT_EQ(lb.code, 0) << lb.output;
  EXPECT_NE(lb.output.find(fmt::format("| 1 | {} (eval {}) | tiny |", trained.id, set.id)), std::string::npos) << lb.output;
  EXPECT_NE(lb.output.find("ranked by frechet_pixel, lower is better"), std::string::npos) << lb.output;
  Result runs = run_asg("runs", dir_);
  EXPECT_NE(runs.output.find(fmt::format("  eval {:<17} FINISHED", set.id)), std::string::npos) << runs.output;

  // Refused before anything is recorded, exit 2: another run, another benchmark, data the model did not train on.
  Result nope = run_asg("eval nope --benchmark e2e-def", dir_);
  EXPECT_EQ(nope.code, 2);
  EXPECT_NE(nope.output.find("no run 'nope'"), std::string::npos) << nope.output;
  Result missing = run_asg("eval " + trained.id + " --benchmark e2e-deff", dir_);
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.output.find("no benchmark definition named 'e2e-deff' (known: e2e-def, e2e-def-more, e2e-def-8px"),
            std::string::npos)
      << missing.output;
  Result pixels = run_asg("eval " + trained.id + " --benchmark e2e-def-8px", dir_);
  EXPECT_EQ(pixels.code, 2);
  EXPECT_NE(pixels.output.find("[dataset] size = 16, but benchmark 'e2e-def-8px' (version 1) measures size = 8"), std::string::npos)
      << pixels.output;
  EXPECT_EQ(reg.result_sets(trained.id).size(), 2u);
}

TEST_F(CliTest, DataInspectDescribesFilesByContentAndRefusesBadOnesInOneLine) {
  asg::Animation a;
  a.width = 3;
  a.height = 2;
  a.loop_count = 0;
  for (int t = 0; t < 3; ++t) {
    asg::RgbaFrame f;
    f.duration_ms = 100 + 50 * t;
    f.rgba.assign(3 * 2 * 4, static_cast<uint8_t>(60 * t));
    f.rgba[3] = 255;  // one opaque pixel, the rest transparent
    a.frames.push_back(f);
  }
  asg::write_gif(dir_ / "s.gif", a);
  asg::write_webp(dir_ / "s.webp", a);
  fs::copy_file(dir_ / "s.webp", dir_ / "named_wrong.gif");
  Result r = run_asg("data inspect --json s.gif s.webp named_wrong.gif", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(R"({"alpha":true,"delays_ms":[100,150,200],"file":"s.gif","format":"gif","frames":3,"height":2,"loop":0,"width":3})"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(R"({"alpha":true,"delays_ms":[100,150,200],"file":"s.webp","format":"webp","frames":3,"height":2,"loop":0,"width":3})"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("warning: named_wrong.gif: the extension says gif but the content is webp; decoded as webp"),
            std::string::npos)
      << r.output;
  Result text = run_asg("data inspect s.gif", dir_);
  EXPECT_NE(text.output.find("s.gif: gif 3x2, 3 frames, delays 100 150 200 ms, loops forever, alpha"), std::string::npos)
      << text.output;

  std::ofstream(dir_ / "bad.gif") << "GIF89a but then nothing";
  Result bad = run_asg("data inspect s.gif bad.gif", dir_);
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("s.gif: gif 3x2"), std::string::npos) << "the good file is still described";
  EXPECT_NE(bad.output.find("error: bad.gif: "), std::string::npos) << bad.output;
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 2) << "one line per file: " << bad.output;
  Result limited = run_asg("data inspect --max-frames 2 s.webp", dir_);
  EXPECT_EQ(limited.code, 1);
  EXPECT_NE(limited.output.find("data.max_frames"), std::string::npos) << limited.output;
}

TEST_F(CliTest, SynthesisedFilesTrainExactlyAsTheInMemoryDataset) {
  const std::string sizes = " --set dataset.train_size=24 --set dataset.validation_size=0 --set dataset.test_size=6";
  Result in_memory = run_asg("run tiny.toml --set train.steps=12 --set train.log_every=1" + sizes, dir_);
  ASSERT_EQ(in_memory.code, 0) << in_memory.output;
  for (const char* format : {"webp", "gif"}) {
    SCOPED_TRACE(format);
    const std::string out = std::string("synth_") + format;
    Result synth = run_asg(fmt::format("data synth tiny.toml {} --format {}{}", out, format, sizes), dir_);
    ASSERT_EQ(synth.code, 0) << synth.output;
    EXPECT_EQ(fs::file_size(dir_ / out / "manifest.jsonl") > 0, true);
    ASSERT_TRUE(fs::exists(dir_ / out / "train" / fmt::format("train_000023.{}", format))) << synth.output;
    // The [dataset] section synth printed, in an experiment of its own.
    const std::string section = synth.output.substr(synth.output.find("\n[dataset]\n") + 1);
    std::ofstream(dir_ / (out + ".toml")) << "base = [\"tiny.toml\"]\nname = \"tiny-files\"\n" << section;
    Result files = run_asg(fmt::format("run {}.toml --set train.steps=12 --set train.log_every=1", out), dir_);
    ASSERT_EQ(files.code, 0) << files.output;
  }
  asg::Registry reg(registry());
  const auto runs = reg.list_runs();  // newest first: gif files, webp files, in memory
  ASSERT_EQ(runs.size(), 3u);
  const auto reference = reg.metric_history(runs[2].id, "train/loss");
  ASSERT_EQ(reference.size(), 12u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(runs[i].name, "tiny-files");
    const auto history = reg.metric_history(runs[i].id, "train/loss");
    ASSERT_EQ(history.size(), reference.size());
    for (size_t k = 0; k < history.size(); ++k) EXPECT_EQ(history[k].value, reference[k].value) << "step " << history[k].step;
    const auto results = reg.results(runs[i].id), ref_results = reg.results(runs[2].id);
    ASSERT_EQ(results.size(), ref_results.size());
    for (size_t k = 0; k < results.size(); ++k) EXPECT_EQ(results[k].value, ref_results[k].value) << results[k].key;
  }
}

TEST_F(CliTest, BadFilesInARunAreSkippedListedAndFailItOnlyPastTheLimit) {
  Result synth = run_asg("data synth tiny.toml files --set dataset.train_size=20 --set dataset.validation_size=0 "
                         "--set dataset.test_size=4",
                         dir_);
  ASSERT_EQ(synth.code, 0) << synth.output;
  std::ofstream(dir_ / "files/train/train_000003.webp", std::ios::trunc) << "not a webp";  // unsupported content
  fs::resize_file(dir_ / "files/train/train_000007.webp", 20);                             // truncated
  {
    std::ofstream manifest(dir_ / "files/manifest.jsonl", std::ios::app);
    manifest << R"({"id": "escape", "path": "../tiny.toml", "caption": "x", "split": "train"})" "\n";
  }
  const std::string section = synth.output.substr(synth.output.find("\n[dataset]\n") + 1);
  std::ofstream(dir_ / "files.toml") << "base = [\"tiny.toml\"]\nname = \"tiny-files\"\n" << section;
  // 3 bad of 25 rows = 12%: fine under max_bad_fraction = 0.2, listed in the run's data_skipped.tsv.
  Result tolerant = run_asg("run files.toml --set train.steps=8 --set data.max_bad_fraction=0.2", dir_);
  ASSERT_EQ(tolerant.code, 0) << tolerant.output;
  asg::Registry reg(registry());
  const auto run = reg.list_runs().at(0);
  const std::string report = asg::read_text_file(dir_ / "runs" / run.id / "data_skipped.tsv");
  EXPECT_EQ(report.rfind("id\treason\n", 0), 0u) << report;
  EXPECT_NE(report.find("escape\t'../tiny.toml' leaves the dataset root"), std::string::npos) << report;
  EXPECT_NE(report.find("train_000003.webp: not a sticker format"), std::string::npos) << report;
  EXPECT_NE(report.find("train_000007.webp: "), std::string::npos) << report;
  EXPECT_NE(tolerant.output.find("data: 3 of 25 samples skipped as bad"), std::string::npos) << tolerant.output;
  bool listed = false;
  for (const auto& a : reg.artifacts(run.id)) listed = listed || a.path == "data_skipped.tsv";
  EXPECT_TRUE(listed);
  // The default limit (1%): the run fails with the counts, and the report written so far stays.
  Result strict = run_asg("run files.toml --set train.steps=8", dir_);
  EXPECT_EQ(strict.code, 1) << strict.output;
  EXPECT_NE(strict.output.find("of 25 samples"), std::string::npos) << strict.output;
  EXPECT_NE(strict.output.find("over [data] max_bad_fraction = 0.01"), std::string::npos) << strict.output;
  const auto failed = reg.list_runs().at(0);
  EXPECT_EQ(failed.status, asg::RunStatus::Failed);
  EXPECT_TRUE(fs::exists(dir_ / "runs" / failed.id / "data_skipped.tsv"));
}

TEST_F(CliTest, DataToolsCheckStatsIndexAndPackAManifest) {
  Result synth = run_asg("data synth tiny.toml files --set dataset.train_size=12 --set dataset.validation_size=0 "
                         "--set dataset.test_size=4 --format gif",
                         dir_);
  ASSERT_EQ(synth.code, 0) << synth.output;
  // check: all good, then one truncated file and one lying extension.
  Result clean = run_asg("data check files/manifest.jsonl --threads 2", dir_);
  EXPECT_EQ(clean.code, 0) << clean.output;
  EXPECT_NE(clean.output.find("files/manifest.jsonl: 16 rows, 0 bad, 0 suspicious"), std::string::npos) << clean.output;
  fs::resize_file(dir_ / "files/train/train_000004.gif", 30);
  fs::copy_file(dir_ / "files/train/train_000005.gif", dir_ / "files/train/x.webp");
  {
    std::ofstream m(dir_ / "files/manifest.jsonl", std::ios::app);
    m << R"({"id": "lies", "path": "train/x.webp", "caption": "x", "split": "train"})" "\n";
  }
  Result dirty = run_asg("data check files/manifest.jsonl", dir_);
  EXPECT_EQ(dirty.code, 1) << dirty.output;
  EXPECT_NE(dirty.output.find("bad train/000004: "), std::string::npos) << dirty.output;
  EXPECT_NE(dirty.output.find("suspicious lies: "), std::string::npos) << dirty.output;
  EXPECT_NE(dirty.output.find("the extension says webp but the content is gif"), std::string::npos) << dirty.output;
  EXPECT_NE(dirty.output.find("17 rows, 1 bad, 1 suspicious"), std::string::npos) << dirty.output;

  // stats: 16 decodable 8-frame GIFs of 16x16 (one undecodable).
  Result stats = run_asg("data stats files/manifest.jsonl --json", dir_);
  ASSERT_EQ(stats.code, 0) << stats.output;
  const auto j = nlohmann::json::parse(stats.output);
  EXPECT_EQ(j["rows"], 17);
  EXPECT_EQ(j["undecodable"], 1);
  EXPECT_EQ(j["frames_histogram"]["2-10"], 16);
  EXPECT_EQ(j["formats"]["gif"], 16);
  EXPECT_EQ(j["width"]["max"], 16.0);

  // index: written next to the manifest; a run opens it; a stale one is refused naming the fix.
  fs::remove(dir_ / "files/train/x.webp");
  Result index = run_asg("data index files/manifest.jsonl", dir_);
  ASSERT_EQ(index.code, 0) << index.output;
  EXPECT_NE(index.output.find("16 rows (train 12, validation 0, test 4), 1 rejected"), std::string::npos) << index.output;
  ASSERT_TRUE(fs::exists(dir_ / "files/manifest.jsonl.asgidx"));
  const std::string section = synth.output.substr(synth.output.find("\n[dataset]\n") + 1);
  std::ofstream(dir_ / "indexed.toml") << "base = [\"tiny.toml\"]\nname = \"indexed\"\n" << section
                                       << "index = \"files/manifest.jsonl.asgidx\"\n";
  Result indexed = run_asg("run indexed.toml --set train.steps=4 --set data.max_bad_fraction=0.2", dir_);
  EXPECT_EQ(indexed.code, 0) << indexed.output;
  {
    std::ofstream m(dir_ / "files/manifest.jsonl", std::ios::app);
    m << "\n";
  }
  Result stale = run_asg("run indexed.toml --set train.steps=4", dir_);
  EXPECT_EQ(stale.code, 1) << stale.output;
  EXPECT_NE(stale.output.find("files/manifest.jsonl changed since it was indexed (rebuild it: asg data index"),
            std::string::npos)
      << stale.output;

  // pack: shards a webdataset run trains on.
  Result pack = run_asg("data pack files/manifest.jsonl shards --samples-per-shard 5", dir_);
  ASSERT_EQ(pack.code, 0) << pack.output;
  // 17 rows less the one whose file is gone; the truncated file is packed as it is (and skipped when read).
  EXPECT_NE(pack.output.find("16 samples in 4 shards"), std::string::npos) << pack.output;
  EXPECT_NE(pack.output.find("rejected lies: 'train/x.webp': no such file"), std::string::npos) << pack.output;
  EXPECT_TRUE(fs::exists(dir_ / "shards/shard-000003.tar"));
  std::ofstream(dir_ / "shards.toml") << "base = [\"tiny.toml\"]\nname = \"shards\"\n[dataset]\nplugin = \"webdataset\"\n"
                                      << "shards = [\"shards/shard-{000000..000003}.tar\"]\nheight = 16\nwidth = 16\n"
                                      << "vocabulary = \"sprite-vocabulary\"\nvocabulary_version = \"1.0.0\"\n";
  Result shards = run_asg("run shards.toml --set train.steps=6 --set data.max_bad_fraction=0.2", dir_);
  EXPECT_EQ(shards.code, 0) << shards.output;
  // The shard set's index: written in the shards' folder, opened by the next run.
  Result shard_index = run_asg("data index 'shards/shard-*.tar'", dir_);
  ASSERT_EQ(shard_index.code, 0) << shard_index.output;
  EXPECT_NE(shard_index.output.find("16 rows (train 12, validation 0, test 4), 0 rejected"), std::string::npos) << shard_index.output;
  ASSERT_TRUE(fs::exists(dir_ / "shards/shards.asgidx")) << shard_index.output;
  Result indexed_shards = run_asg("run shards.toml --set train.steps=6 --set data.max_bad_fraction=0.2 "
                                  "--set dataset.index=shards/shards.asgidx",
                                  dir_);
  EXPECT_EQ(indexed_shards.code, 0) << indexed_shards.output;
  asg::Registry reg(registry());
  const auto run = reg.list_runs().at(0);
  EXPECT_EQ(run.name, "shards");
  EXPECT_EQ(run.status, asg::RunStatus::Finished);
}

TEST_F(CliTest, ExportFramesWritesTheDecodedCanvasAsRgbaPngs) {
  asg::Animation a;
  a.width = 5;
  a.height = 3;
  for (int t = 0; t < 3; ++t) {
    asg::RgbaFrame f;
    for (int i = 0; i < 15; ++i) f.rgba.insert(f.rgba.end(), {static_cast<uint8_t>(80 * t), 10, 200, static_cast<uint8_t>(i * 17)});
    a.frames.push_back(f);
  }
  asg::write_webp(dir_ / "s.webp", a);
  Result r = run_asg("data export-frames s.webp frames", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  for (int t = 0; t < 3; ++t) {
    const auto png = asg::read_sticker(dir_ / "frames" / fmt::format("frame_{:04}.png", t));
    EXPECT_EQ(png.format, asg::MediaFormat::Png);
    EXPECT_EQ(png.animation.frames.at(0).rgba, a.frames[t].rgba) << t;
  }
  EXPECT_FALSE(fs::exists(dir_ / "frames/frame_0003.png"));
  std::ofstream(dir_ / "bad.gif") << "GIF89a";
  Result bad = run_asg("data export-frames bad.gif frames2", dir_);
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
}

TEST_F(CliTest, BadFlagsAndNamesGetClearErrors) {
  Result r = run_asg("run tiny.toml --no-such-flag", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos) << r.output;
  r = run_asg("run missing.toml", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("missing.toml"), std::string::npos) << r.output;
  r = run_asg("leaderboard --format xml", dir_);
  EXPECT_EQ(r.code, 2);
  r = run_asg("plugins show unet", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("Did you mean 'unet3d'?"), std::string::npos) << r.output;
  r = run_asg("leaderboard", dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("no registry here yet"), std::string::npos) << r.output;
  r = run_asg("plugins", dir_);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("temporal_conv"), std::string::npos);
}

TEST_F(CliTest, ValidateBuildRefusesCombinationsThatCannotWorkNamingBothSides) {
  // `validate` alone checks keys and values; `--build` builds the model as a run would and runs it once.
  Result ok = run_asg("validate tiny.toml --build", dir_);
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("# built: backbone 'unet3d' with "), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("one forward pass at batch 1 on the CPU gave [1, 4, "), std::string::npos) << ok.output;
  // dit's patch against the dataset's frame size, and swap_attention's heads against the backbone's channels.
  std::ofstream(dir_ / "dit.toml") << "base = [\"tiny.toml\"]\n[backbone]\nplugin = \"dit\"\npatch = 3\n";
  Result patch = run_asg("validate dit.toml --build", dir_);
  EXPECT_EQ(patch.code, 2) << patch.output;
  EXPECT_NE(patch.output.find("[backbone] backbone 'dit': patch = 3 must divide the clip's height and width"), std::string::npos)
      << patch.output;
  EXPECT_NE(patch.output.find("(the clips come from [dataset] 'synthetic_stickers': 4 channels, "), std::string::npos) << patch.output;
  Result heads = run_asg("validate tiny.toml --build --set temporal.plugin=\\\"swap_attention\\\" --set temporal.heads=5", dir_);
  EXPECT_EQ(heads.code, 2) << heads.output;
  EXPECT_NE(heads.output.find("[temporal] temporal 'swap_attention': heads = 5 does not divide"), std::string::npos) << heads.output;
  EXPECT_NE(heads.output.find("of [backbone] backbone 'unet3d': "), std::string::npos) << heads.output;
  // Without --build the same files validate: only their keys and values are checked.
  EXPECT_EQ(run_asg("validate tiny.toml --set temporal.plugin=\\\"swap_attention\\\" --set temporal.heads=5", dir_).code, 0);
  EXPECT_FALSE(fs::exists(registry()));  // nothing recorded
}

TEST_F(CliTest, Bf16PrecisionRunsWhereAutocastCoversTheBackboneAndIsRefusedBeforeRecordingElsewhere) {
  // A backbone whose custom kernel has no bfloat16 instantiation: refused, naming its error, nothing recorded.
  std::ofstream(dir_ / "float_only.toml") << fmt::format(
      "base = [\"tiny.toml\"]\n[backbone]\nplugin = \"float_only\"\n[temporal]\nplugin = \"none\"\n"
      "[runtime]\nprecision = \"bf16\"\nplugin_path = [\"{}\"]\n",
      asg::testing::test_plugin_dir("float_only").string());
  Result refused = run_asg("run float_only.toml", dir_);
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_NE(refused.output.find("float_only.toml: [runtime] precision = \"bf16\": the backbone cannot run under this LibTorch's "
                                "bfloat16 autocast on cpu (\"square_float_only\" not implemented for 'BFloat16')"),
            std::string::npos)
      << refused.output;
  EXPECT_FALSE(fs::exists(registry()));
  // The same file in float32 runs: the refusal was about bfloat16 alone.
  ASSERT_EQ(run_asg("run float_only.toml --set runtime.precision=\\\"fp32\\\" --set train.steps=2", dir_).code, 0);
  // unet3d (GroupNorm, which LibTorch 2.x's CPU autocast runs in float32) with STI, and dit, train and sample under it.
  Result unet = run_asg("run tiny.toml --set runtime.precision=\\\"bf16\\\" --set temporal.plugin=\\\"sti\\\"", dir_);
  ASSERT_EQ(unet.code, 0) << unet.output;
  EXPECT_NE(unet.output.find("FINISHED"), std::string::npos) << unet.output;
  std::ofstream(dir_ / "dit_bf16.toml") << "base = [\"tiny.toml\"]\n[backbone]\nplugin = \"dit\"\nwidth = 32\ndepth = 2\n"
                                           "[runtime]\nprecision = \"bf16\"\n";
  Result ok = run_asg("run dit_bf16.toml", dir_);
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("FINISHED"), std::string::npos) << ok.output;
}

TEST_F(CliTest, Fp16PrecisionTrainsWithADynamicLossScaleThatTheRegistryRecords) {
  Result r = run_asg("run tiny.toml --set runtime.precision=\\\"fp16\\\" --set train.log_every=5", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("FINISHED"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("steps skipped for an overflowing gradient; loss scale at the last step "), std::string::npos)
      << r.output;
  asg::Registry reg(registry());
  const auto run = reg.list_runs().at(0);
  const auto scale = reg.metric_history(run.id, "train/loss_scale");
  ASSERT_FALSE(scale.empty());
  EXPECT_GT(scale.back().value, 1);
  EXPECT_FALSE(reg.metric_history(run.id, "train/skipped_steps").empty());
  // A precision that is not one of the three is refused before anything runs, naming the valid ones.
  Result bad = run_asg("run tiny.toml --set runtime.precision=\\\"fp8\\\"", dir_);
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("fp16"), std::string::npos) << bad.output;
}

TEST_F(CliTest, ACudaRunTrainsInBf16AndRecordsItsDeviceOrIsRefusedBeforeRecordingWithoutOne) {
  Result r = run_asg("run tiny.toml --set runtime.device=\\\"cuda:0\\\" --set runtime.precision=\\\"bf16\\\" "
                     "--set train.checkpoint_every=10",
                     dir_);
  if (!fs::exists("/dev/nvidiactl")) {
    // No GPU driver on this machine: refused before anything is recorded, naming what would be valid.
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("[runtime] device = \"cuda:0\": no CUDA device is available"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(registry()));
    GTEST_SKIP() << "no GPU: would check that the reduced quickstart trains on cuda:0 under bf16 autocast, records the "
                    "card's name and its peak device memory, and writes checkpoints with the CUDA RNG state";
  }
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("FINISHED"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cuda:0: peak allocated "), std::string::npos) << r.output;
  asg::Registry reg(registry());
  const auto run = reg.list_runs().at(0);
  EXPECT_EQ(run.status, asg::RunStatus::Finished);
  const auto host = nlohmann::json::parse(run.host_json);
  EXPECT_EQ(host.value("device", ""), "cuda:0");
  EXPECT_NE(host.value("device_name", "").find("sm_"), std::string::npos) << run.host_json;
  const auto peak = reg.metric_history(run.id, "run/peak_device_allocated_mib");
  ASSERT_EQ(peak.size(), 1u);
  EXPECT_GT(peak[0].value, 0);
}

TEST_F(CliTest, LatentDiffusionTrainsTheAutoencoderFirstThenDiffusesAndDecodesItsLatents) {
  // frame_vae halves 16x16 frames to 8x8 latents; asg run trains it, measures the scaling factor, freezes it
  // and trains the diffusion model on its latents; evaluation decodes the sampled latents.
  write_latent_experiment("[train]\nsteps = 10\n");
  Result built = run_asg("validate latent.toml --build", dir_);
  ASSERT_EQ(built.code, 0) << built.output;
  EXPECT_NE(built.output.find("autoencoder 'frame_vae' codes [4, 8, 16, 16] clips as [4, 8, 8, 8] latents"), std::string::npos)
      << built.output;
  EXPECT_NE(built.output.find("one forward pass at batch 1 on the CPU gave [1, 4, 8, 8, 8]"), std::string::npos) << built.output;

  Result r = run_asg("run latent.toml", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("autoencoder: training 40 steps"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("autoencoder: latent scaling factor "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("diffused as 4 latents of 8x8 ([autoencoder] 'frame_vae')"), std::string::npos) << r.output;
  asg::Registry reg(registry());
  const auto first = reg.list_runs().front();
  ASSERT_EQ(first.status, asg::RunStatus::Finished);
  auto ae_loss = reg.metric_history(first.id, "autoencoder/loss");
  ASSERT_GE(ae_loss.size(), 8u);
  EXPECT_LT(ae_loss.back().value, 0.5 * ae_loss.front().value);
  const fs::path weights = dir_ / "runs" / first.id / "autoencoder.pt";
  ASSERT_TRUE(fs::exists(weights));
  EXPECT_TRUE(fs::exists(dir_ / "runs" / first.id / "samples" / "grid.gif"));

  // The trained autoencoder, loaded from the file: no training, the same scaling factor, and the diffusion
  // stage after it is the first run's to the bit.
  Result again = run_asg("run latent.toml --set autoencoder.weights=" + weights.string(), dir_);
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(again.output.find("autoencoder: training"), std::string::npos) << again.output;
  const auto second = reg.list_runs().front();
  auto a = reg.metric_history(first.id, "train/loss"), b = reg.metric_history(second.id, "train/loss");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].value, b[i].value) << "step " << a[i].step;
  auto ra = reg.results(first.id), rb = reg.results(second.id);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i].value, rb[i].value) << ra[i].key;

  // asg eval of a latent run restores the autoencoder it trained (its autoencoder.pt): under the run's own
  // protocol, the run's numbers exactly.
  write_definitions();
  Result own = run_asg("run latent.toml --set benchmark.name=e2e-def", dir_);
  ASSERT_EQ(own.code, 0) << own.output;
  const auto held = reg.list_runs().front();
  Result evaluated = run_asg("eval " + held.id + " --benchmark e2e-def", dir_);
  ASSERT_EQ(evaluated.code, 0) << evaluated.output;
  EXPECT_NE(evaluated.output.find("autoencoder: the run's, from " + (fs::path("runs") / held.id / "autoencoder.pt").string()),
            std::string::npos)
      << evaluated.output;
  const auto own_results = reg.results(held.id), set_results = reg.result_set_values(reg.result_sets(held.id).at(0).id);
  ASSERT_EQ(own_results.size(), set_results.size());
  for (size_t i = 0; i < own_results.size(); ++i) EXPECT_EQ(own_results[i].value, set_results[i].value) << own_results[i].key;

  // A latent the backbone cannot take is refused naming both sides, before anything is recorded.
  Result small = run_asg("run latent.toml --set 'autoencoder.channels=[8, 8, 8, 8, 8]'", dir_);
  EXPECT_EQ(small.code, 2) << small.output;
  EXPECT_NE(small.output.find("[backbone] backbone 'unet3d': 2 levels needs height and width divisible by 2, data are 1x1"),
            std::string::npos)
      << small.output;
  EXPECT_NE(small.output.find("(the latents come from [autoencoder] autoencoder 'frame_vae' over [dataset] 'synthetic_stickers'"),
            std::string::npos)
      << small.output;
  EXPECT_EQ(reg.list_runs().size(), 3u);
}

TEST_F(CliTest, AResumedLatentRunLoadsTheAutoencoderItTrainedAndEndsAsIfNeverKilled) {
  write_latent_experiment();
  const std::vector<std::string> args = {"--set", "train.steps=300", "--set", "train.checkpoint_every=100", "--set",
                                         "train.log_every=1"};
  Result reference = run_asg("run latent.toml --set train.steps=300 --set train.checkpoint_every=100 --set train.log_every=1 "
                             "--registry ref.sqlite --runs-dir ref",
                             dir_);
  ASSERT_EQ(reference.code, 0) << reference.output;
  asg::Registry ref_reg(dir_ / "ref.sqlite");
  const auto ref_run = ref_reg.list_runs().at(0);

  pid_t pid = start_endless_run(130, args, {"run", "latent.toml"});
  ASSERT_GT(pid, 0);
  const std::string killed = kill_hard(pid);
  ASSERT_FALSE(killed.empty());
  ASSERT_TRUE(fs::exists(dir_ / "runs" / killed / "autoencoder.pt"));
  Result resumed = run_asg("resume " + killed, dir_);
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_EQ(resumed.output.find("autoencoder: training"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("autoencoder: trained by an earlier attempt, loaded from"), std::string::npos) << resumed.output;

  asg::Registry reg(registry());
  const auto attempt = reg.list_runs().at(0);
  EXPECT_EQ(attempt.status, asg::RunStatus::Finished);
  const auto history = reg.metric_history(attempt.id, "train/loss"), ref_history = ref_reg.metric_history(ref_run.id, "train/loss");
  ASSERT_EQ(history.size(), ref_history.size());
  for (size_t i = 0; i < history.size(); ++i) ASSERT_EQ(history[i].value, ref_history[i].value) << "step " << history[i].step;
  const auto results = reg.results(attempt.id), ref_results = ref_reg.results(ref_run.id);
  ASSERT_EQ(results.size(), ref_results.size());
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i].value, ref_results[i].value) << results[i].key;
}

TEST_F(CliTest, ImageConditionedRunsTrainOnMaskedFramesAndEvaluateTheirTask) {
  std::ofstream(dir_ / "i2v.toml") << "base = [\"tiny.toml\"]\n[conditioning]\ntasks = [\"generation\", \"image\", \"interpolation\"]\n"
                                      "[eval]\ntask = \"interpolation\"\n[train]\nsteps = 10\n";
  Result built = run_asg("validate i2v.toml --build", dir_);
  ASSERT_EQ(built.code, 0) << built.output;
  EXPECT_NE(built.output.find("one forward pass at batch 1 on the CPU gave [1, 4, 8, 16, 16]"), std::string::npos) << built.output;
  Result r = run_asg("run i2v.toml", dir_);
  ASSERT_EQ(r.code, 0) << r.output;
  ASSERT_EQ(run_asg("run tiny.toml --set train.steps=10", dir_).code, 0);
  asg::Registry reg(registry());
  auto runs = reg.list_runs();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_NE(runs[0].protocol_hash, runs[1].protocol_hash);  // interpolation is measured apart from generation
  EXPECT_NE(runs[0].method_hash, runs[1].method_hash);

  // An eval task the model was not trained for, and a task that does not exist: exit 2, nothing recorded.
  Result untrained = run_asg("run i2v.toml --set eval.task=\\\"prediction\\\"", dir_);
  EXPECT_EQ(untrained.code, 2) << untrained.output;
  EXPECT_NE(untrained.output.find("[eval] task = \"prediction\" needs a model trained for it: [conditioning] tasks = "
                                  "[\"generation\", \"image\", \"interpolation\"] does not include it"),
            std::string::npos)
      << untrained.output;
  Result unknown = run_asg("run i2v.toml --set 'conditioning.tasks=[\"imgae\"]'", dir_);
  EXPECT_EQ(unknown.code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("not an allowed value"), std::string::npos) << unknown.output;
  EXPECT_EQ(reg.list_runs().size(), 2u);
}

TEST_F(CliTest, EveryCommittedExperimentValidatesAndBuilds) {
  // Every experiment file in the repository (bases included) builds and runs its backbone once.
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(asg::testing::source_dir() / "experiments")) {
    if (entry.path().extension() != ".toml") continue;
    if (entry.path().parent_path().filename() == "sweeps") {
      // A sweep file: every point must load (asg sweep status plans the sweep and runs nothing).
      Result r = run_asg("sweep status " + entry.path().string(), dir_);
      EXPECT_EQ(r.code, 0) << entry.path() << "\n" << r.output;
      EXPECT_NE(r.output.find("PENDING"), std::string::npos) << r.output;
      continue;
    }
    Result r = run_asg("validate --build " + entry.path().string(), dir_);
    EXPECT_EQ(r.code, 0) << entry.path() << "\n" << r.output;
    EXPECT_NE(r.output.find("# built: backbone '"), std::string::npos) << entry.path();
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

TEST_F(CliTest, EveryPluginReadmeDocumentsItsCurrentParameters) {
  // Each plugin folder's README carries the parameter table `asg plugins show` prints from the plugin.
  int checked = 0;
  for (const char* root : {"datasets", "plugins", "metrics"}) {
    for (const auto& entry : fs::recursive_directory_iterator(asg::testing::source_dir() / root)) {
      if (entry.path().filename() != "CMakeLists.txt") continue;
      std::string cmake = asg::read_text_file(entry.path());
      auto at = cmake.find("asg_add_plugin(");
      if (at == std::string::npos) continue;
      std::string name = cmake.substr(at + 15, cmake.find_first_of(" )", at + 15) - (at + 15));
      fs::path readme = entry.path().parent_path() / "README.md";
      ASSERT_TRUE(fs::exists(readme)) << "plugin " << name << " has no README.md";
      std::string text = asg::read_text_file(readme);
      Result show = run_asg("plugins show " + name, dir_);
      ASSERT_EQ(show.code, 0) << show.output;
      // First line: "<kind> <name> <version>"; the README's title names the same version.
      std::string version = show.output.substr(0, show.output.find('\n'));
      version = version.substr(version.rfind(' ') + 1);
      EXPECT_NE(text.find("version " + version + ")"), std::string::npos) << readme << " does not say version " << version;
      std::istringstream lines(show.output);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("| ", 0) == 0) {
          EXPECT_NE(text.find(line), std::string::npos) << readme << " lacks the row: " << line;
        }
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);
}

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
