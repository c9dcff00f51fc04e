#include "asg/leaderboard.h"
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

// What a leaderboard reads of each run (its packed results, schema 6) is what the results table holds, value for value.
void expect_packed_results_match_the_table(const fs::path& file) {
  asg::Registry reg(file);
  size_t compared = 0;
  for (const auto& [run, packed] : reg.ranked_runs("")) {
    const auto table = reg.results(run.id);
    ASSERT_EQ(packed.size(), table.size()) << run.id;
    for (size_t i = 0; i < table.size(); ++i) {
      EXPECT_EQ(packed[i].key, table[i].key) << run.id;
      EXPECT_EQ(packed[i].higher_is_better, table[i].higher_is_better) << run.id;
      if (std::isnan(table[i].value)) EXPECT_TRUE(std::isnan(packed[i].value)) << run.id << " " << table[i].key;
      else EXPECT_EQ(packed[i].value, table[i].value) << run.id << " " << table[i].key;
    }
    compared += table.size();
  }
  EXPECT_GT(compared, 0u) << file;
}

// Opens a copy of an old registry file with the current code and checks that the migration kept every row
// of every table with its values, left the schema-3 columns empty on rows written before them, added no
// result sets (to files from before schema 4), and gave every run a role and no deletion.
void expect_migration_keeps_every_row(const fs::path& copy, int64_t old_version) {
  ASSERT_EQ(user_version(copy), old_version);
  const auto old_columns = current_columns(copy);
  const auto before = snapshot_rows(copy, old_columns);
  size_t old_runs = before.at("runs").size();
  ASSERT_GT(old_runs, 0u);
  { asg::Registry reg(copy); EXPECT_EQ(reg.schema_version(), asg::Registry::kSchemaVersion); }
  EXPECT_EQ(user_version(copy), asg::Registry::kSchemaVersion);
  if (old_version < 4) {
    EXPECT_EQ(query_rows(copy, "SELECT count(*) FROM result_sets"), std::vector<std::string>{"i:0|"});
  }
  EXPECT_EQ(snapshot_rows(copy, old_columns), before);
  if (old_version < 5) {  // roles and soft deletion came with schema 5
    EXPECT_EQ(query_rows(copy, "SELECT count(*) FROM runs WHERE role = 'run' AND deleted_ms IS NULL"),
              std::vector<std::string>{"i:" + std::to_string(old_runs) + "|"});
  }
  if (old_version < 3) {
    EXPECT_EQ(query_rows(copy, "SELECT count(*) FROM runs WHERE method_hash = '' AND protocol_hash = '' AND protocol_json = '' "
                               "AND resumed_from IS NULL"),
              std::vector<std::string>{"i:" + std::to_string(old_runs) + "|"});
  }
  EXPECT_EQ(query_rows(copy, "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'runs_benchmark_protocol'"),
            std::vector<std::string>{"t:runs_benchmark_protocol|"});
  EXPECT_EQ(query_rows(copy, "PRAGMA integrity_check"), std::vector<std::string>{"t:ok|"});
  expect_packed_results_match_the_table(copy);
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

TEST_F(RegistryTest, TheLeaderboardReadOfResultsFollowsEveryWriteAndSurvivesADamagedPackedColumn) {
  std::string id;
  {
    asg::Registry reg(path_);
    id = reg.create_run(run("a"));
    reg.mark_running(id);
    reg.set_results(id, {{"caption_accuracy", 0.75, true}, {"frechet_pixel", std::nan(""), false}});
    reg.set_results(id, {{"caption_accuracy", 0.5, true}});  // a later write replaces the value, keeps the rest
    reg.mark_ended(id, asg::RunStatus::Finished);
    reg.set_results(reg.create_run(run("unfinished")), {{"caption_accuracy", 1.0, true}});
    auto ranked = reg.ranked_runs("bench");
    ASSERT_EQ(ranked.size(), 1u);  // only FINISHED runs are ranked
    ASSERT_EQ(ranked[0].results.size(), 2u);
    EXPECT_EQ(ranked[0].results[0].key, "caption_accuracy");
    EXPECT_EQ(ranked[0].results[0].value, 0.5);
    EXPECT_TRUE(std::isnan(ranked[0].results[1].value));
    EXPECT_FALSE(ranked[0].results[1].higher_is_better);
  }
  expect_packed_results_match_the_table(path_);
  const std::string before = asg::render_leaderboard(asg::Registry(path_), "bench", asg::LeaderboardFormat::Csv);
  EXPECT_NE(before.find("0.5"), std::string::npos) << before;
  // A damaged or truncated packed column costs a lookup, never a number: the run is read from the results table.
  for (const char* damage : {"x'0100'", "x'02000000'", "x'0100000010000000616263'", "x'00000000ff'"}) {
    exec(path_, fmt::format("UPDATE runs SET results_packed = {} WHERE id = '{}'", damage, id));
    EXPECT_EQ(asg::render_leaderboard(asg::Registry(path_), "bench", asg::LeaderboardFormat::Csv), before) << damage;
  }
  asg::Registry(path_).repack_all_results();
  expect_packed_results_match_the_table(path_);
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

TEST_F(RegistryTest, AFailedMetricFlushWritesNothingAndLeavesLoggingUsable) {
  asg::Registry reg(path_);
  const std::string id = reg.create_run(run("a"));
  reg.mark_running(id);
  reg.log_metrics(id, {{"train/loss", 1, 0.5, 0}});
  // A failure on the second row of a flush (as a full disk would cause): the first row is rolled back too.
  exec(path_, "CREATE TRIGGER refuse_step_3 BEFORE INSERT ON metric_history WHEN NEW.step = 3 "
              "BEGIN SELECT RAISE(ABORT, 'step 3 refused'); END");
  try {
    reg.log_metrics(id, {{"train/loss", 2, 0.4, 0}, {"train/loss", 3, 0.3, 0}});
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("step 3 refused"), std::string::npos) << e.what();
  }
  EXPECT_EQ(reg.metric_history(id).size(), 1u);
  // An unknown run breaks the foreign key.
  EXPECT_THROW(reg.log_metrics("no-such-run", {{"train/loss", 2, 0.4, 0}}), asg::Error);
  EXPECT_TRUE(reg.metric_history("no-such-run").empty());
  // The statements log_metrics reuses still work afterwards.
  exec(path_, "DROP TRIGGER refuse_step_3");
  reg.log_metrics(id, {{"train/loss", 2, 0.25, 0}, {"train/lr", 3, 1e-3, 0}});
  auto history = reg.metric_history(id);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[1].step, 2);
  EXPECT_EQ(history[1].value, 0.25);
  EXPECT_EQ(history[2].key, "train/lr");
  EXPECT_EQ(history[2].step, 3);
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
    EXPECT_EQ(std::string(e.what()), path_.string() + ": registry schema version 99 is newer than this asg supports (6); it was "
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
  // The protocol column comes last, so the columns before it keep their places; empty = not recorded.
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "rank,run,name,acc,fd,experiment,config,commit,protocol");
  EXPECT_NE(csv.find("1," + high + ",trained,0.9000,3.0000,experiments/trained.toml," + std::string(64, 'a') +
                     ",0123456789abcdef0123456789abcdef01234567,\n"),
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
  // tests/fixtures/registry_v1.sqlite was written by asg with schema version 1: one FINISHED quickstart run with
  // its history, results and plugins, and one row left RUNNING (as a SIGKILL leaves it).
  fs::create_directories(path_.parent_path());
  fs::copy_file(asg::testing::source_dir() / "tests/fixtures/registry_v1.sqlite", path_);
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

// tests/fixtures/registry_v2.sqlite was written by asg with schema version 2 (the registry library of that
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
  fs::copy_file(asg::testing::source_dir() / "tests/fixtures/registry_v2.sqlite", path_);
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

// ---- protocols on the leaderboard ----------------------------------------------------------------------

namespace {

const std::string kProtocolA = "a1a1a1a1a1a1" + std::string(52, '0');  // the current protocol in these tests
const std::string kProtocolB = "b2b2b2b2b2b2" + std::string(52, '0');
const std::string kProtocolAJson = R"({"eval":{"num_samples":32,"sampler":{"guidance":7.5}},"metrics":{"fid":{"version":"2"}}})";
const std::string kProtocolBJson = R"({"eval":{"num_samples":64},"metrics":{"fid":{"version":"3"}},"split":"test"})";

// Finishes runs with results under a protocol. Each run gets its own created_ms, one second after the
// previous, so "newest" does not depend on two runs landing in the same millisecond.
class ProtocolTest : public RegistryTest {
 protected:
  std::string finish(asg::Registry& reg, const std::string& name, const std::string& protocol, const std::string& protocol_json,
                     double acc, int64_t seed = 0) {
    auto r = run(name);
    r.rank_by = "acc";
    r.seed = seed;
    r.protocol_hash = protocol;
    r.protocol_json = protocol_json;
    const std::string id = reg.create_run(r);
    reg.mark_running(id);
    reg.set_results(id, {{"acc", acc, true}, {"fd", 10 * acc, false}});
    reg.mark_ended(id, asg::RunStatus::Finished);
    exec(path_, fmt::format("UPDATE runs SET created_ms = {} WHERE id = '{}'", clock_ms_ += 1000, id));
    return id;
  }
  int64_t clock_ms_ = 1800000000000;
};

}  // namespace

TEST_F(ProtocolTest, RanksEachProtocolInItsOwnSectionAndNamesTheDifferingFields) {
  asg::Registry reg(path_);
  // The best number was measured under the old protocol B: it must not top protocol A's ranking.
  const std::string b_best = finish(reg, "old-protocol", kProtocolB, kProtocolBJson, 0.99);
  const std::string a_low = finish(reg, "a-low", kProtocolA, kProtocolAJson, 0.5);
  const std::string a_high = finish(reg, "a-high", kProtocolA, kProtocolAJson, 0.8);

  const std::string md = asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Markdown);
  const std::string ranked_title =
      "## Leaderboard: bench under protocol a1a1a1a1a1a1 (ranked by acc, higher is better; 2 finished runs)\n";
  const std::string other_title =
      "## Other protocol b2b2b2b2b2b2 (not ranked with the above; differs in: eval.num_samples = 64 (above: 32), "
      "eval.sampler.guidance absent (above: 7.5), metrics.fid.version = \"3\" (above: \"2\"), split = \"test\" (above: absent); "
      "ranked by acc, higher is better; 1 finished run)\n";
  ASSERT_EQ(md.find(ranked_title), 0u) << md;
  const size_t other = md.find(other_title);
  ASSERT_NE(other, std::string::npos) << md;
  const size_t a_high_row = md.find("| 1 | " + a_high + " | a-high | 0.8000 | 8.0000 |");
  const size_t a_low_row = md.find("| 2 | " + a_low + " | a-low | 0.5000 | 5.0000 |");
  const size_t b_row = md.find("| 1 | " + b_best + " | old-protocol | 0.9900 | 9.9000 |");  // rank restarts
  EXPECT_LT(a_high_row, a_low_row) << md;
  EXPECT_LT(a_low_row, other) << md;
  EXPECT_LT(other, b_row) << md;
  EXPECT_NE(b_row, std::string::npos) << md;
  // Each section repeats the table header.
  const std::string header = "| rank | run | name | acc ↑ | fd ↓ | experiment | config | commit |\n";
  EXPECT_LT(md.find(header), other);
  EXPECT_GT(md.rfind(header), other);

  const std::string csv = asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Csv);
  std::vector<std::string> lines;
  for (size_t start = 0, end; (end = csv.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(csv.substr(start, end - start));
  ASSERT_EQ(lines.size(), 4u) << csv;
  EXPECT_EQ(lines[0], "rank,run,name,acc,fd,experiment,config,commit,protocol");
  const std::string tail = ",0123456789abcdef0123456789abcdef01234567,";
  EXPECT_EQ(lines[1], "1," + a_high + ",a-high,0.8000,8.0000,experiments/a-high.toml," + std::string(64, 'a') + tail + kProtocolA);
  EXPECT_EQ(lines[2], "2," + a_low + ",a-low,0.5000,5.0000,experiments/a-low.toml," + std::string(64, 'a') + tail + kProtocolA);
  EXPECT_EQ(lines[3], "1," + b_best + ",old-protocol,0.9900,9.9000,experiments/old-protocol.toml," + std::string(64, 'a') + tail +
                          kProtocolB);
}

TEST_F(ProtocolTest, TheNewestRunDecidesWhichProtocolIsRanked) {
  asg::Registry reg(path_);
  finish(reg, "a", kProtocolA, kProtocolAJson, 0.5);
  finish(reg, "b", kProtocolB, kProtocolBJson, 0.4);  // newer: B is now the benchmark's protocol
  const std::string md = asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Markdown);
  EXPECT_EQ(md.find("## Leaderboard: bench under protocol b2b2b2b2b2b2 ("), 0u) << md;
  // The fields are described from the other protocol's side, against the ranked one.
  EXPECT_NE(md.find("## Other protocol a1a1a1a1a1a1 (not ranked with the above; differs in: eval.num_samples = 32 (above: 64), "
                    "eval.sampler.guidance = 7.5 (above: absent), metrics.fid.version = \"2\" (above: \"3\"), split absent "
                    "(above: \"test\");"),
            std::string::npos)
      << md;
}

TEST_F(ProtocolTest, OneProtocolKeepsTheTableAsItWas) {
  asg::Registry reg(path_);
  const std::string low = finish(reg, "low", kProtocolA, kProtocolAJson, 0.25);
  const std::string high = finish(reg, "high", kProtocolA, kProtocolAJson, 0.75);
  const std::string row_tail = " | aaaaaaaaaaaa | 0123456789 |\n";
  EXPECT_EQ(asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Markdown),
            "## Leaderboard: bench under protocol a1a1a1a1a1a1 (ranked by acc, higher is better; 2 finished runs)\n"
            "\n"
            "| rank | run | name | acc ↑ | fd ↓ | experiment | config | commit |\n"
            "| --- | --- | --- | ---: | ---: | --- | --- | --- |\n"
            "| 1 | " + high + " | high | 0.7500 | 7.5000 | experiments/high.toml" + row_tail +
            "| 2 | " + low + " | low | 0.2500 | 2.5000 | experiments/low.toml" + row_tail);
}

TEST_F(ProtocolTest, RunsFromBeforeSchema3FormTheirOwnSection) {
  // The version-2 fixture's two FINISHED legacy-bench runs recorded no protocol; runs recorded now do.
  fs::create_directories(path_.parent_path());
  fs::copy_file(asg::testing::source_dir() / "tests/fixtures/registry_v2.sqlite", path_);
  asg::Registry reg(path_);
  auto r = run("current", "legacy-bench");
  r.rank_by = "caption_accuracy";
  r.protocol_hash = kProtocolA;
  r.protocol_json = kProtocolAJson;
  const std::string current = reg.create_run(r);
  reg.mark_running(current);
  reg.set_results(current, {{"caption_accuracy", 0.5, true}, {"frechet_pixel", 30.0, false}});
  reg.mark_ended(current, asg::RunStatus::Finished);
  // Even a newer run without a protocol (an old asg still writing here) does not displace the current one.
  exec(path_, fmt::format("UPDATE runs SET created_ms = 1 WHERE id = '{}'", current));

  const std::string md = asg::render_leaderboard(reg, "legacy-bench", asg::LeaderboardFormat::Markdown);
  ASSERT_EQ(md.find("## Leaderboard: legacy-bench under protocol a1a1a1a1a1a1 (ranked by caption_accuracy, higher is better; "
                    "1 finished run)\n"),
            0u)
      << md;
  const size_t old = md.find("## Protocol not recorded (run before schema 3; not ranked with the above; ranked by caption_accuracy, "
                             "higher is better; 2 finished runs)\n");
  ASSERT_NE(old, std::string::npos) << md;
  EXPECT_LT(md.find("| 1 | " + current + " | current | 0.5000 |"), old) << md;
  EXPECT_GT(md.find(std::string("| 1 | ") + kV2Large + " | legacy-large | 0.8125 | 27.2500 |"), old) << md;
  EXPECT_GT(md.find(std::string("| 2 | ") + kV2Small + " | legacy-small | 0.6250 | 41.5000 |"), old) << md;
}

TEST_F(ProtocolTest, SummaryGroupsByRunNameAndProtocol) {
  asg::Registry reg(path_);
  finish(reg, "arm-a", kProtocolB, kProtocolBJson, 0.9, 0);  // the same arm measured the old way
  finish(reg, "arm-a", kProtocolA, kProtocolAJson, 0.5, 0);
  finish(reg, "arm-a", kProtocolA, kProtocolAJson, 0.7, 1);
  finish(reg, "arm-b", kProtocolA, kProtocolAJson, 0.65, 0);

  const std::string md = asg::render_group_summary(reg, "bench", {}, asg::LeaderboardFormat::Markdown);
  EXPECT_NE(md.find("## Summary: bench (3 groups under 2 protocols, not comparable with each other; mean ± sample std over runs; "
                    "ordered by protocol, then acc)\n"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| name | protocol | runs | seeds | wall min | acc ↑ | fd ↓ |\n| --- | --- | --- | --- | --- | ---: | ---: |\n"),
            std::string::npos)
      << md;
  // arm-a under A is the mean of 0.5 and 0.7 only; the 0.9 measured under B stays out of it.
  const size_t a_under_a = md.find("| arm-a | a1a1a1a1a1a1 | 2 | 0 1 | 0.0 | 0.6000 ± 0.1414 |");
  const size_t b_under_a = md.find("| arm-b | a1a1a1a1a1a1 | 1 | 0 | 0.0 | 0.6500 |");
  const size_t a_under_b = md.find("| arm-a | b2b2b2b2b2b2 | 1 | 0 | 0.0 | 0.9000 |");
  ASSERT_NE(a_under_a, std::string::npos) << md;
  ASSERT_NE(b_under_a, std::string::npos) << md;
  ASSERT_NE(a_under_b, std::string::npos) << md;
  EXPECT_LT(b_under_a, a_under_a);  // ranked within protocol A
  EXPECT_LT(a_under_a, a_under_b);  // the current protocol first, despite B's higher mean

  const std::string csv = asg::render_group_summary(reg, "bench", {"arm-a"}, asg::LeaderboardFormat::Csv);
  EXPECT_EQ(csv, "name,protocol,runs,seeds,wall min,acc,fd\n"
                 "arm-a," + kProtocolA + ",2,0 1,0.0,0.6 ± 0.141421,6 ± 1.41421\n"
                 "arm-a," + kProtocolB + ",1,0,0.0,0.9,9\n");

  // One protocol among the groups asked for: no protocol column, the table as before.
  const std::string only_b = asg::render_group_summary(reg, "bench", {"arm-b"}, asg::LeaderboardFormat::Markdown);
  EXPECT_NE(only_b.find("## Summary: bench (1 groups; mean ± sample std over runs; ordered by the order asked for)\n"),
            std::string::npos)
      << only_b;
  EXPECT_NE(only_b.find("| name | runs | seeds | wall min | acc ↑ | fd ↓ |\n"), std::string::npos) << only_b;
  EXPECT_NE(only_b.find("| arm-b | 1 | 0 | 0.0 | 0.6500 | 6.5000 |"), std::string::npos) << only_b;
}

// ---- result sets (asg eval) ---------------------------------------------------------------------------

namespace {

asg::NewResultSet result_set(const std::string& run_id, const std::string& benchmark, const std::string& protocol,
                             const std::string& protocol_json) {
  asg::NewResultSet set;
  set.run_id = run_id;
  set.benchmark = benchmark;
  set.rank_by = "acc";
  set.protocol_hash = protocol;
  set.protocol_json = protocol_json;
  set.config_text = "[eval]\n";
  set.output_dir = "evals/x";
  return set;
}

}  // namespace

TEST_F(ProtocolTest, AResultSetIsOnlyForAFinishedRunAndItsEndIsFinal) {
  asg::Registry reg(path_);
  const std::string running = reg.create_run(run("running"));
  reg.mark_running(running);
  try {
    reg.begin_result_set(result_set(running, "bench", kProtocolB, kProtocolBJson));
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(std::string(e.what()), path_.string() + ": run " + running + " is RUNNING; only a FINISHED run gets result sets");
  }
  const std::string id = finish(reg, "trained", kProtocolA, kProtocolAJson, 0.5);
  const int64_t set = reg.begin_result_set(result_set(id, "bench", kProtocolB, kProtocolBJson));
  EXPECT_EQ(reg.result_sets(id).at(0).status, asg::RunStatus::Running);
  reg.end_result_set(set, asg::RunStatus::Finished, {{"acc", 0.25, true}, {"fd", NAN, false}});
  const auto sets = reg.result_sets(id);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].status, asg::RunStatus::Finished);
  EXPECT_EQ(sets[0].protocol_json, kProtocolBJson);
  EXPECT_TRUE(sets[0].ended_ms.has_value());
  const auto values = reg.result_set_values(set);
  ASSERT_EQ(values.size(), 2u);
  EXPECT_EQ(values[0].value, 0.25);
  EXPECT_TRUE(std::isnan(values[1].value));
  EXPECT_THROW(reg.end_result_set(set, asg::RunStatus::Failed, {}, "again"), asg::Error);
  // The run's own results are untouched.
  EXPECT_EQ(reg.results(id).at(0).value, 0.5);
}

TEST_F(ProtocolTest, TheLeaderboardShowsResultSetsUnderTheirOwnProtocol) {
  asg::Registry reg(path_);
  const std::string a = finish(reg, "a", kProtocolA, kProtocolAJson, 0.5);
  const std::string b = finish(reg, "b", kProtocolA, kProtocolAJson, 0.7);
  // a evaluated under protocol B twice (the newer counts), b's evaluation under B failed, a under its own protocol.
  const int64_t old_set = reg.begin_result_set(result_set(a, "bench", kProtocolB, kProtocolBJson));
  reg.end_result_set(old_set, asg::RunStatus::Finished, {{"acc", 0.1, true}, {"fd", 1.0, false}});
  const int64_t new_set = reg.begin_result_set(result_set(a, "bench", kProtocolB, kProtocolBJson));
  reg.end_result_set(new_set, asg::RunStatus::Finished, {{"acc", 0.3, true}, {"fd", 3.0, false}});
  const int64_t failed = reg.begin_result_set(result_set(b, "bench", kProtocolB, kProtocolBJson));
  reg.end_result_set(failed, asg::RunStatus::Failed, {}, "boom");
  const int64_t same = reg.begin_result_set(result_set(a, "bench", kProtocolA, kProtocolAJson));
  reg.end_result_set(same, asg::RunStatus::Finished, {{"acc", 0.9, true}, {"fd", 9.0, false}});
  exec(path_, fmt::format("UPDATE result_sets SET created_ms = {} + id", clock_ms_));  // evaluated after the runs

  const std::string md = asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Markdown);
  // The newest row is a's evaluation under B, so B is ranked first; A follows with a and b as they ran.
  const size_t ranked = md.find("under protocol " + kProtocolB.substr(0, 12));
  const size_t other = md.find("## Other protocol " + kProtocolA.substr(0, 12));
  ASSERT_NE(ranked, std::string::npos) << md;
  ASSERT_NE(other, std::string::npos) << md;
  EXPECT_LT(ranked, other);
  EXPECT_NE(md.find(fmt::format("| 1 | {} (eval {}) | a | 0.3000 | 3.0000 |", a, new_set)), std::string::npos) << md;
  EXPECT_EQ(md.find(fmt::format("(eval {})", old_set)), std::string::npos) << md;  // superseded
  EXPECT_EQ(md.find(fmt::format("(eval {})", failed)), std::string::npos) << md;
  EXPECT_EQ(md.find(fmt::format("(eval {})", same)), std::string::npos) << md;  // the run's own results stand
  EXPECT_NE(md.find("| 1 | " + b + " | b | 0.7000 |", other), std::string::npos) << md;
  EXPECT_NE(md.find("| 2 | " + a + " | a | 0.5000 |", other), std::string::npos) << md;
  // A benchmark only result sets are on is a leaderboard too.
  const int64_t elsewhere = reg.begin_result_set(result_set(b, "other-bench", kProtocolB, kProtocolBJson));
  reg.end_result_set(elsewhere, asg::RunStatus::Finished, {{"acc", 0.2, true}});
  EXPECT_NE(asg::render_leaderboard(reg, "other-bench", asg::LeaderboardFormat::Markdown)
                .find(fmt::format("| 1 | {} (eval {}) | b | 0.2000 |", b, elsewhere)),
            std::string::npos);
}

TEST_F(RegistryTest, MigratesARegistryWrittenByVersion4AndGroupsItsSeeds) {
  // Written by the version-4 registry library (tests/fixtures/README.md says how): two seeds of the quickstart's
  // resolved config, one with a result set under another benchmark.
  fs::create_directories(path_.parent_path());
  fs::copy_file(asg::testing::source_dir() / "tests/fixtures/registry_v4.sqlite", path_);
  expect_migration_keeps_every_row(path_, 4);
  asg::Registry reg(path_);
  const auto finished = reg.list_runs("v4-bench", asg::RunStatus::Finished);
  ASSERT_EQ(finished.size(), 2u);
  // The migration computed each row's seedless hash from its config: the two seeds are one config.
  EXPECT_EQ(finished[0].seedless_hash.size(), 64u);
  EXPECT_EQ(finished[0].seedless_hash, finished[1].seedless_hash);
  EXPECT_EQ(finished[0].role, asg::RunRole::Run);
  EXPECT_NE(finished[0].config_text.find("[runtime]"), std::string::npos);  // read from runs.config_text, where v4 kept it
  asg::LeaderboardOptions options;
  options.benchmark = "v4-bench";
  const std::string md = asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown);
  EXPECT_NE(md.find("| quickstart | 2 | 0 1 | 0.6250 ± 0.1768 |"), std::string::npos) << md;
  EXPECT_EQ(reg.result_sets(finished[0].id).size() + reg.result_sets(finished[1].id).size(), 1u);
  // Its runs export and import like new ones.
  reg.export_runs({finished[0].id, finished[1].id}, dir_ / "v4-export.sqlite");
  asg::Registry other(dir_ / "merged.sqlite");
  EXPECT_EQ(other.import_runs(dir_ / "v4-export.sqlite").imported.size(), 2u);
  EXPECT_EQ(other.run_digest(finished[1].id), reg.run_digest(finished[1].id));
}

TEST_F(RegistryTest, MigratesARegistryWrittenByVersion5AndPacksItsResults) {
  // Written by the version-5 registry library (tests/fixtures/README.md says how): a sweep of two configs x two seeds
  // (one point finished without results, one config's results recorded in another order, a NaN), a failed run, a
  // deleted run, a reproduction and a result set under another benchmark.
  fs::create_directories(path_.parent_path());
  fs::copy_file(asg::testing::source_dir() / "tests/fixtures/registry_v5.sqlite", path_);
  expect_migration_keeps_every_row(path_, 5);  // includes: every run's packed results are its results table's
  EXPECT_EQ(query_rows(path_, "SELECT count(*) FROM runs WHERE results_packed IS NOT NULL"), std::vector<std::string>{"i:5|"});  // runs with results
  asg::Registry reg(path_);
  // Ranked: the four points only (not the sweep, the failed, the deleted run or the reproduction).
  EXPECT_EQ(reg.ranked_runs("v5-bench").size(), 4u);
  asg::LeaderboardOptions options;
  options.benchmark = "v5-bench";
  const std::string md = asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown);
  EXPECT_NE(md.find("| 2 | 0 1 | 0.6250 ± 0.1768 | 3.5000 ± 0.7071 | 0.1250 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 2 | 0 1 | 0.6250 | 2.5000 |  |"), std::string::npos) << md;
  EXPECT_EQ(md.find("v5-deleted"), std::string::npos) << md;
  EXPECT_EQ(md.find("v5-sweep"), std::string::npos) << md;
  options.benchmark = "v5-other";
  EXPECT_NE(asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Csv).find("0.25"), std::string::npos);
}

TEST_F(RegistryTest, MigratesARegistryWrittenByVersion3AndKeepsItsRows) {
  // Written by the version-3 asg: `asg run` of a reduced quickstart (tests/fixtures/README.md says how).
  fs::create_directories(path_.parent_path());
  fs::copy_file(asg::testing::source_dir() / "tests/fixtures/registry_v3.sqlite", path_);
  expect_migration_keeps_every_row(path_, 3);
  asg::Registry reg(path_);
  const auto finished = reg.list_runs("", asg::RunStatus::Finished);
  ASSERT_EQ(finished.size(), 1u);
  const auto& run = finished[0];
  EXPECT_EQ(run.protocol_hash.size(), 64u);
  EXPECT_EQ(run.method_hash.size(), 64u);
  ASSERT_FALSE(reg.results(run.id).empty());
  EXPECT_FALSE(reg.plugins(run.id).empty());
  EXPECT_TRUE(reg.result_sets(run.id).empty());
  // The migrated run takes a result set, which its benchmark's leaderboard shows.
  const int64_t set = reg.begin_result_set(result_set(run.id, "v3-bench-more", std::string(64, 'c'), R"({"eval":{"num_samples":9}})"));
  reg.end_result_set(set, asg::RunStatus::Finished, {{"frechet_pixel", 1.5, false}});
  EXPECT_NE(asg::render_leaderboard(reg, "v3-bench-more", asg::LeaderboardFormat::Markdown)
                .find(fmt::format("| 1 | {} (eval {}) |", run.id, set)),
            std::string::npos);
}

