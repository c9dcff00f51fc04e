// Leaderboard formats against golden files, seed grouping, --group-by, --where, compare, abbreviated run ids,
// soft deletion, and export/import between registries. Every registry here is built by the test, with fixed
// run ids and times so that the output is byte for byte stable.
//
// To accept a deliberate change of a format: ASG_UPDATE_GOLDEN=1 ./asg_registry_test --gtest_filter='Report*',
// then read the diff of tests/fixtures/golden/ before committing it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "asg/error.h"
#include "asg/leaderboard.h"
#include "asg/registry.h"
#include "asg/run_query.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

void sql(const fs::path& file, const std::string& statement) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << statement << ": " << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expect_golden(const std::string& actual, const std::string& name) {
  const fs::path golden = asg::testing::source_dir() / "tests/fixtures/golden" / name;
  if (std::getenv("ASG_UPDATE_GOLDEN")) {
    fs::create_directories(golden.parent_path());
    std::ofstream(golden, std::ios::binary) << actual;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden << " is missing; ASG_UPDATE_GOLDEN=1 writes it";
  EXPECT_EQ(actual, read_file(golden)) << "differs from " << golden << " (ASG_UPDATE_GOLDEN=1 rewrites it)";
}

std::string config(const std::string& temporal, int64_t seed, const std::string& lr = "0.001") {
  return "name = \"x\"\n[temporal]\nplugin = \"" + temporal + "\"\n[train]\nlr = " + lr + "\nsteps = 100\n[runtime]\nseed = " +
         std::to_string(seed) + "\n";
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = asg::testing::make_temp_dir("report");
    path_ = dir_ / "registry.sqlite";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A FINISHED run with fixed id and times (created at `minute` past a fixed hour: later = newer).
  std::string finish(asg::Registry& reg, const std::string& id, const std::string& name, const std::string& temporal, int64_t seed,
                     double acc, double fd, int minute, const std::string& protocol = "p1", const std::string& lr = "0.001") {
    asg::NewRun r;
    r.name = name;
    r.experiment_path = "experiments/" + name + ".toml";
    r.benchmark = "bench";
    r.rank_by = "acc";
    r.config_text = config(temporal, seed, lr);
    r.config_hash = std::string(63, 'c') + std::to_string(minute % 10);
    r.seed = seed;
    r.git_commit = "0123456789abcdef0123456789abcdef01234567";
    r.host_json = R"({"cpu":"test","torch":"1.13.1"})";
    r.method_hash = std::string(64, 'm');
    r.protocol_hash = protocol == "p1" ? std::string(64, 'a') : std::string(64, 'b');
    r.protocol_json = protocol == "p1" ? R"({"eval":{"num_samples":64}})" : R"({"eval":{"num_samples":32}})";
    const std::string made = reg.create_run(r);
    reg.mark_running(made);
    reg.record_plugins(made, {{"temporal", "temporal", temporal, "1.0", "/lib/" + temporal + ".so", std::string(64, temporal[0])}});
    reg.log_metrics(made, {{"train/loss", 1, 2.0, 1000}, {"train/loss", 2, 1.0, 2000}});
    reg.set_results(made, {{"acc", acc, true}, {"fd", fd, false}});
    reg.mark_ended(made, asg::RunStatus::Finished);
    // Fixed ids and times, across every table that names the run.
    const int64_t t = 1764700000000 + minute * 60000;
    sql(path_, "UPDATE runs SET id = '" + id + "', created_ms = " + std::to_string(t) + ", started_ms = " + std::to_string(t) +
                   ", ended_ms = " + std::to_string(t + 90000) + " WHERE id = '" + made + "';" +
                   "UPDATE run_configs SET run_id = '" + id + "' WHERE run_id = '" + made + "';" +
                   "UPDATE run_plugins SET run_id = '" + id + "' WHERE run_id = '" + made + "';" +
                   "UPDATE metric_history SET run_id = '" + id + "' WHERE run_id = '" + made + "';" +
                   "UPDATE results SET run_id = '" + id + "' WHERE run_id = '" + made + "';");
    return id;
  }

  // Two arms over three seeds, a third arm once, and a run under another protocol.
  void build_ablation(asg::Registry& reg) {
    finish(reg, "20261202-100000-aaa001", "conv", "temporal_conv", 0, 0.50, 12.0, 1);
    finish(reg, "20261202-100000-aaa002", "conv", "temporal_conv", 1, 0.60, 11.0, 2);
    finish(reg, "20261202-100000-aaa003", "conv", "temporal_conv", 2, 0.70, 10.0, 3);
    finish(reg, "20261202-100000-bbb001", "sti", "sti", 0, 0.80, 9.0, 4);
    finish(reg, "20261202-100000-bbb002", "sti", "sti", 1, 0.90, 8.0, 5);
    finish(reg, "20261202-100000-bbb003", "sti", "sti", 2, 0.85, 8.5, 6);
    finish(reg, "20261202-100000-ccc001", "none_<script>alert(1)</script>", "none", 0, 0.30, 20.0, 7);
    finish(reg, "20261202-090000-ddd001", "sti-32", "sti", 0, 0.95, 7.0, 0, "p2");
  }

  fs::path dir_, path_;
};

TEST_F(ReportTest, LeaderboardFormatsMatchTheirGoldenFiles) {
  asg::Registry reg(path_);
  build_ablation(reg);
  asg::LeaderboardOptions seeds;
  seeds.benchmark = "bench";
  expect_golden(asg::render_leaderboard(reg, seeds, asg::LeaderboardFormat::Markdown), "leaderboard_seeds.md");
  expect_golden(asg::render_leaderboard(reg, seeds, asg::LeaderboardFormat::Csv), "leaderboard_seeds.csv");
  expect_golden(asg::render_leaderboard(reg, seeds, asg::LeaderboardFormat::Json), "leaderboard_seeds.json");
  expect_golden(asg::render_leaderboard(reg, seeds, asg::LeaderboardFormat::Latex), "leaderboard_seeds.tex");
  expect_golden(asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Markdown), "leaderboard_runs.md");
  asg::LeaderboardOptions ablation = seeds;
  ablation.group_by = "temporal.plugin";
  expect_golden(asg::render_leaderboard(reg, ablation, asg::LeaderboardFormat::Markdown), "leaderboard_group_by.md");
  expect_golden(asg::render_leaderboard(reg, ablation, asg::LeaderboardFormat::Latex), "leaderboard_group_by.tex");
}

TEST_F(ReportTest, SeedsOfOneConfigFormOneRowWithMeanStdAndN) {
  asg::Registry reg(path_);
  build_ablation(reg);
  asg::LeaderboardOptions options;
  options.benchmark = "bench";
  const auto j = nlohmann::json::parse(asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Json));
  ASSERT_EQ(j["sections"].size(), 2u);  // the 32-sample protocol apart
  const auto& rows = j["sections"][0]["rows"];
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["label"], "sti");  // best mean acc first
  EXPECT_EQ(rows[0]["n"], 3);
  EXPECT_NEAR(rows[0]["metrics"]["acc"]["mean"].get<double>(), 0.85, 1e-12);
  EXPECT_NEAR(rows[0]["metrics"]["acc"]["std"].get<double>(), 0.05, 1e-12);  // sample std (n - 1)
  EXPECT_EQ(rows[1]["label"], "conv");
  EXPECT_NEAR(rows[1]["metrics"]["fd"]["std"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(rows[2]["n"], 1);
  EXPECT_TRUE(rows[2]["metrics"]["acc"]["std"].is_null());
  EXPECT_EQ(j["sections"][1]["rows"][0]["runs"][0]["id"], "20261202-090000-ddd001");
  EXPECT_EQ(j["sections"][1]["ranked_with_first"], false);
}

TEST_F(ReportTest, RowsOfOneNameAreToldApartByTheKeysTheyDifferIn) {
  // A sweep's points all carry the experiment's name: each row says what makes it another config.
  asg::Registry reg(path_);
  finish(reg, "20261202-110000-eee001", "point", "sti", 0, 0.5, 1.0, 1, "p1", "0.0005");
  finish(reg, "20261202-110000-eee002", "point", "sti", 1, 0.6, 1.0, 2, "p1", "0.0005");
  finish(reg, "20261202-110000-fff001", "point", "none", 0, 0.4, 1.0, 3, "p1", "0.002");
  asg::LeaderboardOptions options;
  options.benchmark = "bench";
  const auto j = nlohmann::json::parse(asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Json));
  const auto& rows = j["sections"][0]["rows"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["label"], "point (temporal.plugin=sti, train.lr=0.0005)");
  EXPECT_EQ(rows[0]["n"], 2);
  EXPECT_EQ(rows[1]["label"], "point (temporal.plugin=none, train.lr=0.002)");
}

TEST_F(ReportTest, WhereFiltersOnConfigKeysPluginsAndStatusAndRefusesUnknownKeys) {
  asg::Registry reg(path_);
  build_ablation(reg);
  asg::LeaderboardOptions options;
  options.benchmark = "bench";
  options.individual_runs = true;
  options.where = {"temporal.plugin=sti", "seed!=2"};
  std::string md = asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown);
  EXPECT_NE(md.find("bbb001"), std::string::npos) << md;
  EXPECT_NE(md.find("bbb002"), std::string::npos) << md;
  EXPECT_NE(md.find("ddd001"), std::string::npos) << md;
  EXPECT_EQ(md.find("bbb003"), std::string::npos) << md;
  EXPECT_EQ(md.find("aaa00"), std::string::npos) << md;
  options.where = {"plugin=temporal_conv", "train.lr=1e-3"};  // numbers compare as numbers
  md = asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown);
  EXPECT_NE(md.find("aaa001"), std::string::npos) << md;
  EXPECT_EQ(md.find("bbb00"), std::string::npos) << md;

  // Seeds of one config share one parsed config, but a key in which they differ is read per run.
  options.where = {"runtime.seed=1"};
  const std::string by_config_seed = asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Csv);
  options.where = {"seed=1"};
  const std::string by_run_seed = asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Csv);
  EXPECT_EQ(by_config_seed, by_run_seed);
  EXPECT_EQ(std::count(by_run_seed.begin(), by_run_seed.end(), '\n'), 3) << by_run_seed;  // the header and the two arms' seed 1
  options.where = {"temporal.plugin=sti", "runtime.seed!=1"};
  md = asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown);
  EXPECT_EQ(md.find("bbb002"), std::string::npos) << md;
  EXPECT_NE(md.find("bbb003"), std::string::npos) << md;

  options.where = {"temporal.plugn=sti"};
  try {
    asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("no run here has a config key 'temporal.plugn'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Did you mean 'temporal.plugin'?"), std::string::npos) << e.what();
  }
  options.where = {"=sti"};
  EXPECT_THROW(asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown), asg::Error);
  options.where = {"temporal.plugin=transformer"};
  try {
    asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no finished run of benchmark 'bench' matches --where temporal.plugin=transformer"),
              std::string::npos)
        << e.what();
  }
  options.where = {};
  options.individual_runs = false;
  options.group_by = "temporal.kernel";
  EXPECT_THROW(asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown), asg::Error);
}

TEST_F(ReportTest, AGroupByRowCountsTheSeedsItsRunsShare) {
  asg::Registry reg(path_);
  finish(reg, "20261202-100000-eee001", "a", "sti", 0, 0.5, 1.0, 1);
  finish(reg, "20261202-100000-eee002", "b", "sti", 0, 0.6, 1.0, 2, "p1", "0.002");
  finish(reg, "20261202-100000-eee003", "c", "sti", 0, 0.7, 1.0, 3, "p1", "0.004");
  finish(reg, "20261202-100000-eee004", "c", "sti", 1, 0.8, 1.0, 4, "p1", "0.004");
  asg::LeaderboardOptions options;
  options.benchmark = "bench";
  options.group_by = "temporal.plugin";
  const std::string md = asg::render_leaderboard(reg, options, asg::LeaderboardFormat::Markdown);
  EXPECT_NE(md.find("| 1 | sti | 4 | 0×3 1 | 0.6500 ± 0.1291 |"), std::string::npos) << md;
}

TEST_F(ReportTest, CompareShowsOnlyWhatDiffers) {
  asg::Registry reg(path_);
  build_ablation(reg);
  const auto a = reg.resolve_run("20261202-100000-aaa001");
  const auto b = reg.resolve_run("20261202-100000-bbb002");
  expect_golden(asg::render_comparison(reg, {a, b}, asg::LeaderboardFormat::Markdown), "compare.md");
  const auto j = nlohmann::json::parse(asg::render_comparison(reg, {a, b}, asg::LeaderboardFormat::Json));
  EXPECT_EQ(j["config"]["temporal.plugin"], nlohmann::json({"temporal_conv", "sti"}));
  EXPECT_EQ(j["config"]["runtime.seed"], nlohmann::json({"0", "1"}));
  EXPECT_FALSE(j["config"].contains("train.lr"));  // equal: left out
  EXPECT_FALSE(j["host"].contains("cpu"));
  EXPECT_NEAR(j["results"]["acc"]["delta_from_first"][1].get<double>(), 0.4, 1e-12);
  // Two seeds of one arm differ in the seed alone.
  const auto c = reg.resolve_run("20261202-100000-aaa002");
  const auto same_arm = nlohmann::json::parse(asg::render_comparison(reg, {a, c}, asg::LeaderboardFormat::Json));
  EXPECT_EQ(same_arm["config"].size(), 1u) << same_arm.dump(2);
  EXPECT_TRUE(same_arm["plugins"].empty());
}

TEST_F(ReportTest, RunIdsResolveFromAnyUnambiguousPrefix) {
  asg::Registry reg(path_);
  build_ablation(reg);
  EXPECT_EQ(reg.resolve_run("20261202-100000-bbb002").id, "20261202-100000-bbb002");
  EXPECT_EQ(reg.resolve_run("20261202-09").id, "20261202-090000-ddd001");
  try {
    reg.resolve_run("20261202-100000-a");
    FAIL();
  } catch (const asg::Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_NE(msg.find("run id '20261202-100000-a' is ambiguous; it starts 3 runs"), std::string::npos) << msg;
    for (const char* id : {"aaa001", "aaa002", "aaa003"}) EXPECT_NE(msg.find(id), std::string::npos) << msg;
  }
  try {
    reg.resolve_run("nope");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no run 'nope'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("20261202-100000-ccc001"), std::string::npos) << e.what();  // the newest are named
  }
}

TEST_F(ReportTest, SoftDeletedRunsLeaveListingsAndLeaderboardsButKeepTheirRows) {
  asg::Registry reg(path_);
  build_ablation(reg);
  reg.mark_deleted("20261202-100000-bbb001");
  EXPECT_EQ(reg.list_runs("bench").size(), 7u);
  asg::RunQuery all;
  all.include_deleted = true;
  EXPECT_EQ(reg.list_runs(all).size(), 8u);
  const auto kept = reg.find_run("20261202-100000-bbb001");
  ASSERT_TRUE(kept);
  EXPECT_TRUE(kept->deleted_ms.has_value());
  EXPECT_EQ(reg.results(kept->id).size(), 2u);
  const std::string md = asg::render_leaderboard(reg, "bench", asg::LeaderboardFormat::Markdown);
  EXPECT_EQ(md.find("bbb001"), std::string::npos) << md;
  // A running run is not removed.
  asg::NewRun r;
  r.name = "live";
  r.experiment_path = "x.toml";
  r.config_hash = "h";
  r.config_text = "";
  const std::string live = reg.create_run(r);
  reg.mark_running(live);
  EXPECT_THROW(reg.mark_deleted(live), asg::Error);
}

TEST_F(ReportTest, ImportingAnExportTwiceAddsNothingTheSecondTime) {
  asg::Registry reg(path_);
  build_ablation(reg);
  reg.begin_result_set({"20261202-100000-bbb001", "bench", "acc", std::string(64, 'e'), "{}", "", "", "{}", "evals/1"});
  const fs::path file = dir_ / "export.sqlite";
  reg.export_runs({"20261202-100000-bbb001", "20261202-100000-bbb002"}, file);
  EXPECT_THROW(reg.export_runs({"20261202-100000-bbb001"}, file), asg::Error);  // never overwrites

  asg::Registry other(dir_ / "other.sqlite");
  auto report = other.import_runs(file);
  EXPECT_EQ(report.imported.size(), 2u);
  EXPECT_EQ(other.run_digest("20261202-100000-bbb001"), reg.run_digest("20261202-100000-bbb001"));
  EXPECT_EQ(other.metric_history("20261202-100000-bbb002").size(), 2u);
  EXPECT_EQ(other.result_sets("20261202-100000-bbb001").size(), 1u);
  report = other.import_runs(file);
  EXPECT_TRUE(report.imported.empty());
  EXPECT_EQ(report.already_present.size(), 2u);
  EXPECT_EQ(other.list_runs().size(), 2u);
  EXPECT_EQ(other.metric_history("20261202-100000-bbb002").size(), 2u);
  // A whole registry merges the same way: only what is missing.
  report = other.import_runs(path_);
  EXPECT_EQ(report.imported.size(), 6u);
  EXPECT_EQ(report.already_present.size(), 2u);
  EXPECT_EQ(other.list_runs().size(), 8u);
}

TEST_F(ReportTest, AnExportTakesAlongTheParentsOfItsRuns) {
  asg::Registry reg(path_);
  asg::NewRun sweep;
  sweep.name = "sweep";
  sweep.experiment_path = "sweep.toml";
  sweep.config_hash = std::string(64, 's');
  sweep.config_text = "name = \"sweep\"\n";
  sweep.role = asg::RunRole::Sweep;
  const std::string parent = reg.create_run(sweep);
  asg::NewRun point = sweep;
  point.name = "point";
  point.role = asg::RunRole::Run;
  point.parent_run_id = parent;
  const std::string child = reg.create_run(point);
  reg.mark_running(child);
  reg.set_results(child, {{"acc", 0.5, true}});
  reg.mark_ended(child, asg::RunStatus::Finished);

  const fs::path file = dir_ / "point.sqlite";
  EXPECT_EQ(reg.export_runs({child}, file), (std::vector<std::string>{parent, child}));  // parents first
  asg::Registry other(dir_ / "other.sqlite");
  EXPECT_EQ(other.import_runs(file).imported, (std::vector<std::string>{parent, child}));
  EXPECT_EQ(other.find_run(child)->parent_run_id.value_or(""), parent);
  EXPECT_EQ(other.run_digest(child), reg.run_digest(child));

  // A file that names a parent it does not hold (written without asg runs export) is refused, naming both runs.
  const fs::path dangling = dir_ / "dangling.sqlite";
  fs::copy_file(file, dangling);
  sql(dangling, "PRAGMA foreign_keys = OFF; DELETE FROM runs WHERE id = '" + parent + "'; DELETE FROM run_configs WHERE run_id = '" + parent + "'");
  asg::Registry third(dir_ / "third.sqlite");
  try {
    third.import_runs(dangling);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("run " + child + " names parent run " + parent + ", which is neither in the file"),
              std::string::npos) << e.what();
  }
  EXPECT_TRUE(third.list_runs().empty());
}

TEST_F(ReportTest, ImportRebuildsThePackedResultsInsteadOfTrustingTheFile) {
  asg::Registry reg(path_);
  build_ablation(reg);
  const fs::path file = dir_ / "export.sqlite";
  reg.export_runs({"20261202-100000-bbb001", "20261202-100000-bbb002"}, file);
  // The packed column is derived data outside the digest: one that disagrees with the results table must not reach a
  // leaderboard of the registry that imports it.
  sql(file, "UPDATE runs SET results_packed = x'0100000003000000616363000000000000000001'");  // acc = 0 for both
  asg::Registry other(dir_ / "other.sqlite");
  EXPECT_EQ(other.import_runs(file).imported.size(), 2u);
  for (const auto& [run, results] : other.ranked_runs("bench")) {
    const auto table = other.results(run.id);
    ASSERT_EQ(results.size(), table.size());
    for (size_t i = 0; i < table.size(); ++i) EXPECT_EQ(results[i].value, table[i].value) << run.id << " " << table[i].key;
    EXPECT_NE(results.at(0).value, 0.0);
  }
}

TEST_F(ReportTest, ImportRefusesANewerSchemaOrADigestMismatchAndChangesNothing) {
  asg::Registry reg(path_);
  build_ablation(reg);
  const fs::path file = dir_ / "export.sqlite";
  reg.export_runs({"20261202-100000-bbb001", "20261202-100000-bbb002"}, file);
  const fs::path target = dir_ / "target.sqlite";
  asg::Registry other(target);

  const fs::path tampered = dir_ / "tampered.sqlite";
  fs::copy_file(file, tampered);
  sql(tampered, "UPDATE results SET value = 0.99 WHERE run_id = '20261202-100000-bbb002' AND key = 'acc'");
  try {
    other.import_runs(tampered);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("run 20261202-100000-bbb002 does not match the digest recorded at export"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("Nothing was imported"), std::string::npos);
  }
  EXPECT_TRUE(other.list_runs().empty());

  const fs::path newer = dir_ / "newer.sqlite";
  fs::copy_file(file, newer);
  sql(newer, "PRAGMA user_version = 99");
  try {
    other.import_runs(newer);
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("written by a newer ASG Lab (registry schema 99"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(other.list_runs().empty());
  std::ofstream(dir_ / "junk.sqlite") << "not a database";
  EXPECT_THROW(other.import_runs(dir_ / "junk.sqlite"), asg::Error);
  EXPECT_TRUE(other.list_runs().empty());
}

TEST(RunQuery, FlatConfigNamesEveryLeafByItsDottedKey) {
  const auto flat = asg::flat_config("name = \"q\"\n[backbone]\nplugin = \"unet3d\"\nchannels = [24, 48]\n[[metrics]]\nplugin = \"fid\"\n"
                                     "[[metrics]]\nplugin = \"fvd\"\nversion = 2\n");
  EXPECT_EQ(flat.at("name"), "q");
  EXPECT_EQ(flat.at("backbone.plugin"), "unet3d");
  EXPECT_EQ(flat.at("backbone.channels"), "[ 24, 48 ]");
  EXPECT_EQ(flat.at("metrics.0.plugin"), "fid");
  EXPECT_EQ(flat.at("metrics.1.version"), "2");
  EXPECT_TRUE(asg::flat_config("not = = toml").empty());
}

}  // namespace
