#include "asg/registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "asg/error.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = asg::testing::make_temp_dir("registry");
    path_ = dir_ / "sub" / "registry.sqlite";  // parent directories are created on open
  }
  void TearDown() override { fs::remove_all(dir_); }
  asg::NewRun run(const std::string& name, const std::string& benchmark = "bench") {
    asg::NewRun r;
    r.name = name;
    r.experiment_path = "experiments/" + name + ".toml";
    r.benchmark = benchmark;
    r.config_hash = std::string(64, 'a');
    r.config_text = "[train]\nsteps = 1\n";
    r.seed = 7;
    r.git_commit = "0123456789abcdef0123456789abcdef01234567";
    r.host_json = R"({"cpu":"test"})";
    return r;
  }
  fs::path dir_, path_;
};

int64_t user_version(const fs::path& p) {
  sqlite3* db = nullptr;
  sqlite3_open(p.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr);
  sqlite3_step(s);
  int64_t v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

void exec(const fs::path& p, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(p.c_str(), &db);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

}  // namespace

TEST_F(RegistryTest, CreatesSchemaWithVersionAndWal) {
  { asg::Registry r(path_); EXPECT_EQ(r.schema_version(), asg::Registry::kSchemaVersion); }
  EXPECT_EQ(user_version(path_), asg::Registry::kSchemaVersion);
  EXPECT_TRUE(fs::exists(path_));
  { asg::Registry again(path_); EXPECT_EQ(again.schema_version(), asg::Registry::kSchemaVersion); }  // idempotent
}

TEST_F(RegistryTest, FinishedLifecycleRecordsEverything) {
  asg::Registry reg(path_);
  std::string id = reg.create_run(run("a"));
  EXPECT_EQ(reg.find_run(id)->status, asg::RunStatus::Queued);
  reg.mark_running(id);
  EXPECT_EQ(reg.find_run(id)->status, asg::RunStatus::Running);
  EXPECT_TRUE(reg.find_run(id)->started_ms.has_value());
  reg.record_plugins(id, {{"backbone", "backbone", "unet3d", "1.0.0", "/x/asg_backbone_unet3d.so", "ff"}});
  reg.log_metrics(id, {{"train/loss", 1, 0.5, 0}, {"train/loss", 2, 0.25, 0}, {"train/lr", 2, 1e-3, 0}});
  reg.set_results(id, {{"caption_accuracy", 0.75, true}, {"frechet_pixel", 3.5, false}});
  reg.add_artifact(id, {"samples/grid.gif", "abc", 123});
  reg.mark_ended(id, asg::RunStatus::Finished);

  auto r = reg.find_run(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, asg::RunStatus::Finished);
  EXPECT_TRUE(r->ended_ms.has_value());
  EXPECT_EQ(r->seed, 7);
  EXPECT_EQ(r->config_text, "[train]\nsteps = 1\n");
  EXPECT_EQ(r->attempt, 1);
  EXPECT_EQ(reg.plugins(id).at(0).name, "unet3d");
  auto loss = reg.metric_history(id, "train/loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[1].step, 2);
  EXPECT_DOUBLE_EQ(loss[1].value, 0.25);
  EXPECT_EQ(reg.metric_history(id).size(), 3u);
  auto results = reg.results(id);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].key, "caption_accuracy");  // recorded order is kept
  EXPECT_FALSE(results[1].higher_is_better);
  EXPECT_EQ(reg.artifacts(id).at(0).bytes, 123);
}

TEST_F(RegistryTest, FailedAndKilledRunsKeepHistoryAndMessage) {
  asg::Registry reg(path_);
  std::string failed = reg.create_run(run("f"));
  reg.mark_running(failed);
  reg.log_metrics(failed, {{"train/loss", 10, 0.9, 0}});
  reg.mark_ended(failed, asg::RunStatus::Failed, "training diverged");
  std::string killed = reg.create_run(run("k"));
  reg.mark_running(killed);
  reg.log_metrics(killed, {{"train/loss", 3, 0.8, 0}});
  reg.mark_ended(killed, asg::RunStatus::Killed, "interrupted by SIGINT");

  EXPECT_EQ(reg.find_run(failed)->status, asg::RunStatus::Failed);
  EXPECT_EQ(reg.find_run(failed)->error, "training diverged");
  EXPECT_EQ(reg.metric_history(failed).size(), 1u);
  EXPECT_EQ(reg.find_run(killed)->status, asg::RunStatus::Killed);
  EXPECT_EQ(reg.metric_history(killed).at(0).step, 3);
  EXPECT_EQ(reg.list_runs("", asg::RunStatus::Failed).size(), 1u);
}

TEST_F(RegistryTest, TerminalStatesAreFinal) {
  asg::Registry reg(path_);
  std::string id = reg.create_run(run("a"));
  reg.mark_running(id);
  reg.mark_ended(id, asg::RunStatus::Killed, "x");
  EXPECT_THROW(reg.mark_ended(id, asg::RunStatus::Finished), asg::Error);
  EXPECT_THROW(reg.mark_running(id), asg::Error);
  EXPECT_EQ(reg.find_run(id)->status, asg::RunStatus::Killed);
}

TEST_F(RegistryTest, NonFiniteValuesAreStoredAsNull) {
  asg::Registry reg(path_);
  std::string id = reg.create_run(run("a"));
  reg.log_metrics(id, {{"train/loss", 1, std::nan(""), 0}});
  EXPECT_TRUE(std::isnan(reg.metric_history(id).at(0).value));
}

TEST_F(RegistryTest, RefusesANewerSchema) {
  { asg::Registry reg(path_); }
  exec(path_, "PRAGMA user_version = 99");
  try {
    asg::Registry reg(path_);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Registry);
    EXPECT_EQ(std::string(e.what()), path_.string() + ": registry schema version 99 is newer than this asg supports (1); it was "
                                                      "written by a newer ASG Lab. Use that version, or --registry another file.");
  }
  EXPECT_EQ(user_version(path_), 99);  // untouched
}

TEST_F(RegistryTest, RefusesAFileThatIsNotADatabase) {
  fs::create_directories(path_.parent_path());
  std::ofstream(path_) << "this is not sqlite, it is a text file with enough bytes to have a header............";
  try {
    asg::Registry reg(path_);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Registry);
    EXPECT_NE(std::string(e.what()).find("not an ASG Lab registry"), std::string::npos) << e.what();
  }
}

TEST_F(RegistryTest, TwoConnectionsShareOneFile) {
  asg::Registry a(path_), b(path_);
  std::string ra = a.create_run(run("a")), rb = b.create_run(run("b"));
  a.mark_running(ra);
  b.mark_running(rb);
  for (int i = 0; i < 20; ++i) {
    a.log_metrics(ra, {{"train/loss", i, 1.0 / (i + 1), 0}});
    b.log_metrics(rb, {{"train/loss", i, 2.0 / (i + 1), 0}});
  }
  EXPECT_EQ(a.metric_history(rb).size(), 20u);
  EXPECT_EQ(b.metric_history(ra).size(), 20u);
}

TEST_F(RegistryTest, LeaderboardRanksFinishedRunsOfOneBenchmark) {
  asg::Registry reg(path_);
  auto finish = [&](const std::string& name, double acc, double fd, const std::string& bench = "bench") {
    asg::NewRun r = run(name, bench);
    r.rank_by = "acc";
    std::string id = reg.create_run(r);
    reg.mark_running(id);
    reg.set_results(id, {{"acc", acc, true}, {"fd", fd, false}});
    reg.mark_ended(id, asg::RunStatus::Finished);
    return id;
  };
  std::string low = finish("untrained", 0.2, 30.0);
  std::string high = finish("trained", 0.9, 3.0);
  finish("other", 1.0, 1.0, "another-benchmark");
  std::string failed = reg.create_run(run("failed"));
  reg.mark_ended(failed, asg::RunStatus::Failed, "boom");

  std::string md = asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Markdown);
  EXPECT_NE(md.find("ranked by acc, higher is better; 2 finished runs"), std::string::npos) << md;
  EXPECT_NE(md.find("| rank | run | name | acc ↑ | fd ↓ | experiment | config | commit |"), std::string::npos) << md;
  EXPECT_LT(md.find(high), md.find(low));  // better first
  EXPECT_NE(md.find("| 1 | " + high + " | trained | 0.9000 | 3.0000 | experiments/trained.toml | aaaaaaaaaaaa | 0123456789 |"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("other"), std::string::npos);
  EXPECT_EQ(md.find("failed"), std::string::npos);

  std::string csv = asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Csv);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "rank,run,name,acc,fd,experiment,config,commit");
  EXPECT_NE(csv.find("1," + high + ",trained,0.9000,3.0000,experiments/trained.toml," + std::string(64, 'a') +
                     ",0123456789abcdef0123456789abcdef01234567"),
            std::string::npos)
      << csv;

  try {
    asg::render_leaderboard(reg, "missing", asg::LeaderboardFormat::Markdown);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(std::string(e.what()), path_.string() + ": no finished runs of benchmark 'missing' (benchmarks with finished "
                                                      "runs: another-benchmark, bench)");
  }
}

TEST_F(RegistryTest, GroupSummaryGivesMeanAndSampleStdPerRunName) {
  asg::Registry reg(path_);
  auto finish = [&](const std::string& name, int64_t seed, double acc, const std::string& benchmark = "bench") {
    auto r = run(name, benchmark);
    r.seed = seed;
    r.rank_by = "acc";
    std::string id = reg.create_run(r);
    reg.mark_running(id);
    reg.set_results(id, {{"acc", acc, true}, {"fd", 10 * acc, false}});
    reg.mark_ended(id, asg::RunStatus::Finished);
  };
  finish("arm-a", 0, 0.5);
  finish("arm-a", 1, 0.7);
  finish("arm-a", 2, 0.9);
  finish("arm-b", 0, 0.95);
  finish("arm-c", 0, 0.1, "another-benchmark");
  std::string failed = reg.create_run(run("arm-a"));
  reg.mark_ended(failed, asg::RunStatus::Failed, "boom");  // not counted

  std::string md = asg::render_group_summary(reg, "bench", {}, asg::LeaderboardFormat::Markdown);
  EXPECT_NE(md.find("| name | runs | seeds | wall min | acc ↑ | fd ↓ |"), std::string::npos) << md;
  // mean 0.7, sample std 0.2 (population std would be 0.163)
  EXPECT_NE(md.find("| arm-a | 3 | 0 1 2 | 0.0 | 0.7000 ± 0.2000 | 7.0000 ± 2.0000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| arm-b | 1 | 0 | 0.0 | 0.9500 | 9.5000 |"), std::string::npos) << md;
  EXPECT_LT(md.find("arm-b"), md.find("arm-a"));  // best mean first
  EXPECT_EQ(md.find("arm-c"), std::string::npos);

  // Names select and order the groups; CSV keeps full precision.
  std::string csv = asg::render_group_summary(reg, "bench", {"arm-a", "arm-b"}, asg::LeaderboardFormat::Csv);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "name,runs,seeds,wall min,acc,fd");
  EXPECT_LT(csv.find("arm-a"), csv.find("arm-b"));
  EXPECT_NE(csv.find("arm-a,3,0 1 2,0.0,0.7 ± 0.2,7 ± 2"), std::string::npos) << csv;

  try {
    asg::render_group_summary(reg, "bench", {"arm-a", "arm-x"}, asg::LeaderboardFormat::Markdown);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(std::string(e.what()), "no finished runs named arm-x in benchmark 'bench' (run names there: arm-a, arm-b)");
  }
}
