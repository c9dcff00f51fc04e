#include "asg/registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sys/wait.h>
#include <unistd.h>

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

// Every row of a query, each rendered as "value|value|..." with its storage class, so 1, 1.0, '1' and
// NULL all differ.
std::vector<std::string> query_rows(const fs::path& p, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  std::vector<std::string> rows;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return rows;
  }
  while (sqlite3_step(s) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(s); ++c) {
      switch (sqlite3_column_type(s, c)) {
        case SQLITE_NULL: row += "NULL"; break;
        case SQLITE_INTEGER: row += "i:" + std::to_string(sqlite3_column_int64(s, c)); break;
        case SQLITE_FLOAT: row += fmt::format("r:{}", sqlite3_column_double(s, c)); break;
        default: row += std::string("t:") + reinterpret_cast<const char*>(sqlite3_column_text(s, c));
      }
      row += '|';
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

// Writes a run with every schema-3 field set (a resumed attempt of `parent`) and reads it back.
void expect_schema3_fields_round_trip(asg::Registry& reg, const std::string& parent) {
  asg::NewRun r;
  r.name = "schema3";
  r.experiment_path = "experiments/schema3.toml";
  r.benchmark = "legacy-bench";
  r.config_hash = std::string(64, '3');
  r.config_text = "[train]\n";
  r.parent_run_id = parent;
  r.attempt = 2;
  r.method_hash = std::string(64, 'm');
  r.protocol_hash = std::string(64, 'p');
  r.protocol_json = R"({"eval":{"num_samples":32},"metrics":{"fid":{"version":"2"}}})";
  r.resumed_from = "runs/schema3/checkpoints/step_0000100.pt";
  const std::string id = reg.create_run(r);
  auto back = reg.find_run(id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->method_hash, r.method_hash);
  EXPECT_EQ(back->protocol_hash, r.protocol_hash);
  EXPECT_EQ(back->protocol_json, r.protocol_json);
  EXPECT_EQ(back->resumed_from, r.resumed_from);
  EXPECT_EQ(back->parent_run_id, std::optional<std::string>(parent));
  EXPECT_EQ(back->attempt, 2);
  // list_runs reads the same columns as find_run.
  bool listed = false;
  for (const auto& run : reg.list_runs("legacy-bench"))
    if (run.id == id) {
      listed = true;
      EXPECT_EQ(run.protocol_json, r.protocol_json);
      EXPECT_EQ(run.resumed_from, r.resumed_from);
    }
  EXPECT_TRUE(listed);
}

const std::vector<std::string> kRegistryTables = {"runs", "run_plugins", "metric_history", "results", "artifacts"};

// Every row of every registry table, restricted to the columns the table has now: taken before a migration
// and again after it, the two must be equal (a migration may add columns, never change or drop a value).
std::map<std::string, std::vector<std::string>> snapshot_rows(const fs::path& p,
                                                                const std::map<std::string, std::string>& columns) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [table, cols] : columns) out[table] = query_rows(p, "SELECT " + cols + " FROM " + table + " ORDER BY rowid");
  return out;
}

std::map<std::string, std::string> current_columns(const fs::path& p) {
  std::map<std::string, std::string> columns;
  for (const auto& table : kRegistryTables) {
    std::string list;
    for (const auto& row : query_rows(p, "SELECT name FROM pragma_table_info('" + table + "') ORDER BY cid"))
      list += (list.empty() ? "" : ", ") + row.substr(2, row.size() - 3);  // "t:name|" -> name
    columns[table] = list;
  }
  return columns;
}

// Opens a copy of an old registry file with the current code and checks that the migration kept every row
// of every table with its values, and left the schema-3 columns empty on old rows.
void expect_migration_keeps_every_row(const fs::path& copy, int64_t old_version) {
  ASSERT_EQ(user_version(copy), old_version);
  const auto old_columns = current_columns(copy);
  const auto before = snapshot_rows(copy, old_columns);
  size_t old_runs = before.at("runs").size();
  ASSERT_GT(old_runs, 0u);
  { asg::Registry reg(copy); EXPECT_EQ(reg.schema_version(), 3); }
  EXPECT_EQ(user_version(copy), 3);
  EXPECT_EQ(snapshot_rows(copy, old_columns), before);
  EXPECT_EQ(query_rows(copy, "SELECT count(*) FROM runs WHERE method_hash = '' AND protocol_hash = '' AND protocol_json = '' "
                             "AND resumed_from IS NULL"),
            std::vector<std::string>{"i:" + std::to_string(old_runs) + "|"});
  EXPECT_EQ(query_rows(copy, "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'runs_benchmark_protocol'"),
            std::vector<std::string>{"t:runs_benchmark_protocol|"});
  EXPECT_EQ(query_rows(copy, "PRAGMA integrity_check"), std::vector<std::string>{"t:ok|"});
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

TEST_F(RegistryTest, RecordsMethodProtocolAndResumeCheckpoint) {
  asg::Registry reg(path_);
  const std::string fresh = reg.create_run(run("fresh", "legacy-bench"));
  auto record = reg.find_run(fresh);
  EXPECT_EQ(record->method_hash, "");  // not set by the caller: stored empty, not invented
  EXPECT_EQ(record->protocol_json, "");
  EXPECT_FALSE(record->resumed_from);  // a fresh run starts from no checkpoint
  expect_schema3_fields_round_trip(reg, fresh);
}

TEST_F(RegistryTest, RefusesAProtocolThatIsNotAJsonObject) {
  asg::Registry reg(path_);
  for (const std::string bad : {"{\"eval\": ", "[1, 2]", "32"}) {
    auto r = run("bad-protocol");
    r.protocol_hash = std::string(64, 'p');
    r.protocol_json = bad;
    try {
      reg.create_run(r);
      FAIL() << bad;
    } catch (const asg::Error& e) {
      EXPECT_EQ(e.kind(), asg::ErrorKind::Internal);
      EXPECT_EQ(std::string(e.what()), "run 'bad-protocol': protocol_json must be a JSON object, got: " + bad);
    }
  }
  EXPECT_TRUE(reg.list_runs().empty());
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
    EXPECT_EQ(std::string(e.what()), path_.string() + ": registry schema version 99 is newer than this asg supports (3); it was "
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

// ---- version 1 files, and finding dead runs (asg runs gc) -------------------------------------------

TEST_F(RegistryTest, MigratesARegistryWrittenByVersion1AndKeepsItsRows) {
  // tests/data/registry_v1.sqlite was written by asg with schema version 1: one FINISHED quickstart run with
  // its history, results and plugins, and one row left RUNNING (as a SIGKILL leaves it).
  fs::create_directories(path_.parent_path());
  fs::copy_file(asg::testing::source_dir() / "tests/data/registry_v1.sqlite", path_);
  expect_migration_keeps_every_row(path_, 1);
  asg::Registry reg(path_);
  auto finished = reg.find_run("20261128-165146-04e309");
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->status, asg::RunStatus::Finished);
  EXPECT_EQ(finished->name, "quickstart");
  EXPECT_EQ(reg.metric_history("20261128-165146-04e309", "train/loss").size(), 3u);
  EXPECT_FALSE(reg.results("20261128-165146-04e309").empty());
  EXPECT_FALSE(reg.plugins("20261128-165146-04e309").empty());
  // The old RUNNING row recorded no process: only its age can tell, and it is older than a millisecond.
  auto collected = reg.collect_dead_runs(/*stale_after_ms=*/1);
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_EQ(collected[0].id, "20261128-165000-dead01");
  EXPECT_NE(collected[0].reason.find("host not recorded"), std::string::npos) << collected[0].reason;
  EXPECT_EQ(reg.find_run("20261128-165000-dead01")->status, asg::RunStatus::Killed);
  expect_schema3_fields_round_trip(reg, "20261128-165146-04e309");
  // New runs use the new columns.
  auto id = reg.create_run(run("after-migration"));
  reg.mark_running(id);
  EXPECT_TRUE(reg.collect_dead_runs(1).empty());  // its process (this test) is alive
}

TEST_F(RegistryTest, GcFindsARunWhoseProcessIsGoneAtOnce) {
  asg::Registry reg(path_);
  auto alive = reg.create_run(run("alive"));
  reg.mark_running(alive);
  auto dead = reg.create_run(run("dead"));
  reg.mark_running(dead);
  // Give "dead" the pid of a child that has exited and been reaped.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  exec(path_, "UPDATE runs SET pid = " + std::to_string(child) + " WHERE id = '" + dead + "'");
  // An hour of grace for heartbeats changes nothing on this host: the process table decides.
  auto collected = reg.collect_dead_runs(3600 * 1000);
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_EQ(collected[0].id, dead);
  EXPECT_EQ(collected[0].name, "dead");
  EXPECT_NE(collected[0].reason.find("process " + std::to_string(child)), std::string::npos) << collected[0].reason;
  auto record = reg.find_run(dead);
  EXPECT_EQ(record->status, asg::RunStatus::Killed);
  EXPECT_NE(record->error.find("found dead by asg runs gc"), std::string::npos) << record->error;
  EXPECT_TRUE(record->ended_ms.has_value());
  EXPECT_EQ(reg.find_run(alive)->status, asg::RunStatus::Running);
  EXPECT_TRUE(reg.collect_dead_runs(3600 * 1000).empty());  // nothing twice
}

TEST_F(RegistryTest, GcDoesNotMistakeAReusedPidForTheRun) {
  asg::Registry reg(path_);
  auto id = reg.create_run(run("reused"));
  reg.mark_running(id);
  // Our pid, but a different start time: the pid was recycled by another process.
  exec(path_, "UPDATE runs SET pid_start = pid_start + 12345 WHERE id = '" + id + "'");
  auto collected = reg.collect_dead_runs(3600 * 1000);
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_NE(collected[0].reason.find("belongs to another process"), std::string::npos) << collected[0].reason;
}

TEST_F(RegistryTest, GcJudgesOtherHostsByTheirHeartbeat) {
  asg::Registry reg(path_);
  auto quiet = reg.create_run(run("quiet"));
  reg.mark_running(quiet);
  auto lively = reg.create_run(run("lively"));
  reg.mark_running(lively);
  exec(path_, "UPDATE runs SET hostname = 'node-17', pid = 1");  // pid 1 exists here, but on node-17 it means nothing
  exec(path_, "UPDATE runs SET heartbeat_ms = heartbeat_ms - 7200000 WHERE id = '" + quiet + "'");
  reg.log_metrics(lively, {{"train/loss", 1, 0.5, 0}});  // a metric flush is a heartbeat
  auto collected = reg.collect_dead_runs(3600 * 1000);
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_EQ(collected[0].id, quiet);
  EXPECT_NE(collected[0].reason.find("no sign of life for 120 min (host node-17"), std::string::npos) << collected[0].reason;
  EXPECT_EQ(reg.find_run(lively)->status, asg::RunStatus::Running);
}

// ---- version 2 files ---------------------------------------------------------------------------------

namespace {

// tests/data/registry_v2.sqlite was written by asg with schema version 2 (the registry library of that
// version, driven through its public API): two FINISHED runs of "legacy-bench" with plugins, history,
// results and artifacts; one FAILED run with its error; and its resumed attempt 2 (parent_run_id set),
// which ended KILLED.
constexpr const char* kV2Small = "20261128-175706-c11e2e";
constexpr const char* kV2Large = "20261128-175706-3ffddb";
constexpr const char* kV2Failed = "20261128-175706-c774ea";
constexpr const char* kV2Resumed = "20261128-175706-0b7365";

}  // namespace

TEST_F(RegistryTest, MigratesARegistryWrittenByVersion2AndKeepsItsRows) {
  fs::create_directories(path_.parent_path());
  fs::copy_file(asg::testing::source_dir() / "tests/data/registry_v2.sqlite", path_);
  expect_migration_keeps_every_row(path_, 2);
  asg::Registry reg(path_);
  // The same rows through the API, with the values the version-2 asg wrote.
  auto finished = reg.list_runs("legacy-bench", asg::RunStatus::Finished);
  ASSERT_EQ(finished.size(), 2u);
  auto large = reg.find_run(kV2Large);
  ASSERT_TRUE(large);
  EXPECT_EQ(large->name, "legacy-large");
  EXPECT_EQ(large->rank_by, "caption_accuracy");
  EXPECT_EQ(large->seed, 2);
  EXPECT_TRUE(large->git_dirty);
  EXPECT_EQ(large->host_json, R"({"cpu":"AMD EPYC","cores":2,"threads":2,"torch":"2.1.2","device":"cpu"})");
  EXPECT_EQ(large->method_hash, "");
  EXPECT_EQ(large->protocol_hash, "");
  EXPECT_EQ(large->protocol_json, "");
  EXPECT_FALSE(large->resumed_from);
  auto results = reg.results(kV2Large);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].key, "caption_accuracy");
  EXPECT_EQ(results[0].value, 0.8125);
  EXPECT_TRUE(results[0].higher_is_better);
  EXPECT_EQ(results[1].key, "frechet_pixel");
  EXPECT_EQ(results[1].value, 27.25);
  EXPECT_FALSE(results[1].higher_is_better);
  auto loss = reg.metric_history(kV2Small, "train/loss");
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_EQ(loss[2].step, 3);
  EXPECT_EQ(loss[2].value, 0.45);
  EXPECT_EQ(loss[2].time_ms, 1764000000003);
  EXPECT_TRUE(std::isnan(reg.metric_history(kV2Failed).at(1).value));  // NaN was stored as NULL
  auto plugins = reg.plugins(kV2Small);
  ASSERT_EQ(plugins.size(), 2u);
  EXPECT_EQ(plugins[1].slot, "metrics[0]");
  EXPECT_EQ(plugins[1].library_sha256, std::string(64, '2'));
  auto artifacts = reg.artifacts(kV2Large);
  ASSERT_EQ(artifacts.size(), 2u);
  EXPECT_EQ(artifacts[1].path, "samples/grid.gif");
  EXPECT_EQ(artifacts[1].bytes, 4096);
  auto failed = reg.find_run(kV2Failed);
  EXPECT_EQ(failed->status, asg::RunStatus::Failed);
  EXPECT_EQ(failed->error, "training diverged: train/loss is NaN at step 2");
  auto resumed = reg.find_run(kV2Resumed);
  EXPECT_EQ(resumed->status, asg::RunStatus::Killed);
  EXPECT_EQ(resumed->parent_run_id, std::optional<std::string>(kV2Failed));
  EXPECT_EQ(resumed->attempt, 2);
  EXPECT_FALSE(resumed->resumed_from);  // version 2 did not record the checkpoint

  expect_schema3_fields_round_trip(reg, kV2Failed);
}
