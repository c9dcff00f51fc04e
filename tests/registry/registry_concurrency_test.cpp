// One registry file shared by many writer processes, and a writer killed in the middle of a transaction.
// These drive the Registry API from forked children: each child opens its own Registry after the fork (an
// SQLite connection must never cross a fork), and reports failure by exit code and its stderr.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "asg/registry.h"
#include "test_paths.h"

namespace fs = std::filesystem;

namespace {

// Runs `body` in a child process whose stderr goes to `stderr_path`. The child exits 0 when body returns,
// 1 when it throws (the message on stderr); it never returns into the test.
pid_t spawn(const fs::path& stderr_path, const std::function<void()>& body) {
  std::fflush(nullptr);  // or buffered output of the parent would be written twice
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, STDERR_FILENO);
  close(fd);
  try {
    body();
    _exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "unknown exception\n");
  }
  _exit(1);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The single value of a query, as text, over a fresh read-only connection ("" if there is no row).
std::string query_value(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  std::string value;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return value;
}

asg::NewRun writer_run(const std::string& name) {
  asg::NewRun r;
  r.name = name;
  r.experiment_path = "experiments/" + name + ".toml";
  r.benchmark = "shared-bench";
  r.config_hash = std::string(64, 'c');
  r.config_text = "[train]\n";
  r.protocol_hash = std::string(64, 'p');
  r.protocol_json = R"({"eval":{"num_samples":32}})";
  return r;
}

class RegistryConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = asg::testing::make_temp_dir("registry-concurrency");
    path_ = dir_ / "registry.sqlite";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_, path_;
};

}  // namespace

TEST_F(RegistryConcurrencyTest, ThirtyTwoWritersShareOneRegistry) {
  constexpr int kWriters = 32;
  constexpr int kFlushes = 100;         // as `asg run` flushes every log_every steps
  constexpr int kPointsPerFlush = 100;  // 10,000 points per writer
  const auto started = std::chrono::steady_clock::now();

  // Every child blocks on this pipe until the parent closes its write end, so all 32 open the (not yet
  // existing) registry file, create its schema and write at the same moment.
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    children.push_back(spawn(dir_ / fmt::format("writer{}.err", w), [&, w] {
      close(gate[1]);
      char byte;
      if (read(gate[0], &byte, 1) != 0) throw std::runtime_error("start gate: unexpected byte");
      asg::Registry reg(path_);
      const std::string id = reg.create_run(writer_run(fmt::format("writer-{}", w)));
      reg.mark_running(id);
      reg.record_plugins(id, {{"backbone", "backbone", "unet3d", "1.0.0", "/x/asg_backbone_unet3d.so", "ff"}});
      std::vector<asg::MetricPoint> batch(kPointsPerFlush);
      for (int f = 0; f < kFlushes; ++f) {
        for (int i = 0; i < kPointsPerFlush; ++i) {
          const int64_t step = int64_t{f} * kPointsPerFlush + i;
          batch[i] = {"train/loss", step, 1.0 / (step + 1), 0};
        }
        reg.log_metrics(id, batch);
      }
      reg.set_results(id, {{"acc", w / 100.0, true}, {"fd", 50.0 - w, false}});
      reg.add_artifact(id, {"samples/grid.gif", "abc", 123});
      reg.mark_ended(id, asg::RunStatus::Finished);
    }));
  }
  close(gate[0]);
  close(gate[1]);  // opens the gate

  for (int w = 0; w < kWriters; ++w) {
    int status = 0;
    ASSERT_EQ(waitpid(children[w], &status, 0), children[w]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "writer " << w << " (status " << status << "): " << read_file(dir_ / fmt::format("writer{}.err", w));
    EXPECT_EQ(read_file(dir_ / fmt::format("writer{}.err", w)), "") << "writer " << w;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("32 writers x 10,000 metric points: %.1f s\n", seconds);
  RecordProperty("seconds", fmt::format("{:.1f}", seconds));

  EXPECT_EQ(query_value(path_, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM runs"), "32");
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM runs WHERE status = 'FINISHED'"), "32");
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM metric_history"), "320000");
  // Each run has its own 10,000 steps, none lost or doubled.
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM (SELECT run_id FROM metric_history GROUP BY run_id "
                               "HAVING count(*) = 10000 AND count(DISTINCT step) = 10000 AND min(step) = 0 AND max(step) = 9999)"),
            "32");
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM results"), "64");
  EXPECT_EQ(query_value(path_, "SELECT count(DISTINCT run_id) FROM results"), "32");
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM run_plugins"), "32");
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM artifacts"), "32");
  asg::Registry reg(path_);
  EXPECT_EQ(reg.schema_version(), asg::Registry::kSchemaVersion);
  EXPECT_EQ(reg.list_runs("shared-bench", asg::RunStatus::Finished).size(), 32u);
}

TEST_F(RegistryConcurrencyTest, AWriterKilledMidTransactionLeavesNothingOfIt) {
  constexpr int kCommittedPoints = 1000;
  constexpr int kKilledPoints = 200000;  // one transaction, far larger than SQLite's page cache
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  std::string run_id;
  {
    asg::Registry reg(path_);  // closed again before the fork
    run_id = reg.create_run(writer_run("victim"));
  }
  const fs::path wal = path_.string() + "-wal";
  const pid_t child = spawn(dir_ / "victim.err", [&] {
    close(ready[0]);
    asg::Registry reg(path_);
    reg.mark_running(run_id);
    std::vector<asg::MetricPoint> before;
    for (int i = 0; i < kCommittedPoints; ++i) before.push_back({"train/loss", i, 0.5, 1000 + i});
    reg.log_metrics(run_id, before);
    std::vector<asg::MetricPoint> big;
    for (int i = 0; i < kKilledPoints; ++i) big.push_back({"train/doomed", i, 0.25, 0});
    if (write(ready[1], "x", 1) != 1) throw std::runtime_error("cannot signal the parent");
    for (;;) reg.log_metrics(run_id, big);  // killed in here
  });
  close(ready[1]);
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1) << read_file(dir_ / "victim.err");
  close(ready[0]);
  // Kill it once the transaction has spilled uncommitted pages into the WAL: then it is certainly inside
  // the transaction (200,000 rows take far longer than this to commit) and recovery has real debris to
  // discard, not just pages that only ever lived in the dead process's memory.
  const auto wal_size = [&] {
    std::error_code ec;
    const auto size = fs::file_size(wal, ec);
    return ec ? uintmax_t{0} : size;
  };
  const uintmax_t committed_wal = wal_size();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (wal_size() < committed_wal + (1u << 20) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_GE(wal_size(), committed_wal + (1u << 20)) << "the big transaction never spilled to the WAL";
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status << ": " << read_file(dir_ / "victim.err");

  EXPECT_EQ(query_value(path_, "PRAGMA integrity_check"), "ok");
  // The committed flush is all there, with its values; the killed transaction left no row.
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM metric_history WHERE key = 'train/loss'"), std::to_string(kCommittedPoints));
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM metric_history WHERE key = 'train/loss' AND value = 0.5 AND time_ms = 1000 + step"),
            std::to_string(kCommittedPoints));
  EXPECT_EQ(query_value(path_, "SELECT count(*) FROM metric_history WHERE key = 'train/doomed'"), "0");

  // The registry stays usable: the dead run is found (its process is gone) and others keep writing.
  asg::Registry reg(path_);
  auto collected = reg.collect_dead_runs(3600 * 1000);
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_EQ(collected[0].id, run_id);
  const std::string next = reg.create_run(writer_run("after"));
  reg.log_metrics(next, {{"train/loss", 1, 0.1, 0}});
  EXPECT_EQ(reg.metric_history(next).size(), 1u);
  EXPECT_EQ(reg.metric_history(run_id).size(), static_cast<size_t>(kCommittedPoints));
}
