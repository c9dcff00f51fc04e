// End-to-end: the real `asg` binary on a reduced quickstart through a run's life: recorded with playable
// GIFs, reproduced, refused, failed, killed and resumed, ranked and re-evaluated; bad flags; and every
// committed experiment and plugin README checked against the build.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "asg/hash.h"
#include "asg/media/gif.h"
#include "asg/registry.h"
#include "asg/files.h"

#include "cli_fixture.h"

namespace fs = std::filesystem;
using asg::testing::CliTest;
using Result = asg::testing::CliResult;
using asg::testing::run_asg;

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
  Result v = run_asg("--allow-plugin-path run novocab.toml", dir_);
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
  Result r = run_asg("--allow-plugin-path run fail.toml --set train.steps=10", dir_);
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

TEST_F(CliTest, EveryCommittedExperimentValidatesAndBuilds) {
  // Every experiment file in the repository (bases included, and the benchmarks' inputs in bench/experiments)
  // builds and runs its backbone once.
  int checked = 0;
  std::vector<fs::path> files;
  for (const char* root : {"experiments", "bench/experiments"})
    for (const auto& entry : fs::recursive_directory_iterator(asg::testing::source_dir() / root)) files.push_back(entry.path());
  for (const auto& path : files) {
    const fs::directory_entry entry(path);
    if (entry.path().extension() != ".toml") continue;
    // The paper's systems need their data and pretrained files: paper_systems_test.cpp builds them with stand-ins.
    if (entry.path().parent_path().filename() == "vsd2m") continue;
    // Benchmark definitions, not experiments (BenchmarkDefinitionTest and `asg benchmarks` read them).
    if (entry.path().parent_path().filename() == "benchmarks") continue;
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
  EXPECT_GE(checked, 17);
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
