// Benchmark: Registry::log_metrics against the fastest plain SQLite code for the same rows: one prepared
// INSERT reused for every row, all rows of a batch in one transaction, on a file with the same schema
// and pragmas (WAL, synchronous = NORMAL, foreign keys on). Both write fresh files in this process,
// interleaved in rounds so machine noise hits both alike; the report is the ratio of median rows/s.
// Target: log_metrics >= 0.8 of the batched inserts.
//
//   asg_bench_registry_logging [--rounds N] [--batches N] [--batch-size N] [--check]
// A batch is one log_metrics call (one flush of `asg run`). --check exits 1 below the target; whatever
// the timing, it exits 1 if the two sides did not store the same rows.
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "asg/registry.h"
#include "bench_args.h"

namespace fs = std::filesystem;

namespace {

constexpr double kTarget = 0.8;

void check_sqlite(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
    throw std::runtime_error(fmt::format("{}: {}", what, sqlite3_errmsg(db)));
}

// The baseline: what a careful hand-written logger does, and nothing else (no heartbeat).
class BatchedInserts {
 public:
  explicit BatchedInserts(const fs::path& path) {
    check_sqlite(db_, sqlite3_open(path.c_str(), &db_), "open");
    sqlite3_busy_timeout(db_, 10000);
    for (const char* pragma : {"PRAGMA foreign_keys = ON", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"})
      check_sqlite(db_, sqlite3_exec(db_, pragma, nullptr, nullptr, nullptr), pragma);
    check_sqlite(db_, sqlite3_prepare_v2(db_, "INSERT INTO metric_history VALUES (?1, ?2, ?3, ?4, ?5)", -1, &insert_, nullptr),
                 "prepare");
  }
  ~BatchedInserts() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }
  void log(const std::string& run_id, const std::vector<asg::MetricPoint>& points) {
    check_sqlite(db_, sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), "begin");
    for (const auto& p : points) {
      sqlite3_bind_text(insert_, 1, run_id.c_str(), static_cast<int>(run_id.size()), SQLITE_STATIC);
      sqlite3_bind_text(insert_, 2, p.key.c_str(), static_cast<int>(p.key.size()), SQLITE_STATIC);
      sqlite3_bind_int64(insert_, 3, p.step);
      sqlite3_bind_double(insert_, 4, p.value);
      sqlite3_bind_int64(insert_, 5, p.time_ms);
      check_sqlite(db_, sqlite3_step(insert_), "insert");
      sqlite3_reset(insert_);
    }
    check_sqlite(db_, sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr), "commit");
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

// A fresh registry file with one RUNNING run; returns the run id.
std::string new_registry(const fs::path& path) {
  asg::Registry reg(path);
  asg::NewRun run;
  run.name = "bench";
  run.experiment_path = "experiments/bench.toml";
  run.config_hash = std::string(64, 'c');
  run.config_text = "[train]\n";
  const std::string id = reg.create_run(run);
  reg.mark_running(id);
  return id;
}

int64_t count_rows(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr);
  const int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"rounds", 11, 1}, {"batches", 200, 1}, {"batch-size", 100, 1}});
  if (!args.parse(argc, argv)) return 2;
  const int rounds = args["rounds"], batches = args["batches"], batch_size = args["batch-size"];
  const bool check = args.check;

  const fs::path dir = fs::temp_directory_path() / fmt::format("asg-bench-registry-logging-{}", getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  int exit_code = 0;
  try {
    // Both files get their schema from the registry, so the layout (index, foreign key) is the same.
    const fs::path registry_file = dir / "registry.sqlite", raw_file = dir / "raw.sqlite";
    const std::string registry_run = new_registry(registry_file), raw_run = new_registry(raw_file);
    asg::Registry registry(registry_file);
    BatchedInserts raw(raw_file);

    // The rows of one flush: two keys per step, as a training loop logs loss and learning rate.
    int64_t step = 0;
    auto next_batch = [&] {
      std::vector<asg::MetricPoint> points;
      points.reserve(batch_size);
      for (int i = 0; i < batch_size; ++i, step += i % 2) {
        const bool loss = i % 2 == 0;
        points.push_back({loss ? "train/loss" : "train/lr", step, loss ? 1.0 / (step + 1) : 1e-3, 1764000000000 + step});
      }
      return points;
    };
    std::vector<std::vector<asg::MetricPoint>> round_batches;
    for (int b = 0; b < batches; ++b) round_batches.push_back(next_batch());

    // Warm-up: page cache, statement caches, first WAL frames.
    registry.log_metrics(registry_run, round_batches.front());
    raw.log(raw_run, round_batches.front());

    std::vector<double> registry_rate, raw_rate;
    for (int r = 0; r < rounds; ++r) {
      const bool registry_first = r % 2 == 0;
      for (int side = 0; side < 2; ++side) {
        const bool is_registry = (side == 0) == registry_first;
        const auto start = std::chrono::steady_clock::now();
        for (const auto& batch : round_batches) {
          if (is_registry) registry.log_metrics(registry_run, batch);
          else raw.log(raw_run, batch);
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        (is_registry ? registry_rate : raw_rate).push_back(static_cast<double>(batches) * batch_size / seconds);
      }
    }

    const int64_t expected = (int64_t{rounds} * batches + 1) * batch_size;
    const int64_t registry_rows = count_rows(registry_file, "SELECT count(*) FROM metric_history");
    const int64_t raw_rows = count_rows(raw_file, "SELECT count(*) FROM metric_history");
    const double reg = asg::bench::median(registry_rate), base = asg::bench::median(raw_rate), ratio = reg / base;
    fmt::print("metric logging, {} rounds x {} batches x {} rows per side, WAL + synchronous=NORMAL, SQLite {}\n", rounds, batches,
               batch_size, sqlite3_libversion());
    fmt::print("  batched raw INSERTs (one transaction per batch) : {:10.0f} rows/s (median of rounds)\n", base);
    fmt::print("  Registry::log_metrics                           : {:10.0f} rows/s (median of rounds)\n", reg);
    fmt::print("  ratio log_metrics/raw                           : {:10.3f}  (target >= {})  {}\n", ratio, kTarget,
               ratio >= kTarget ? "OK" : "UNDER TARGET");
    if (registry_rows != expected || raw_rows != expected) {
      fmt::print(stderr, "row counts differ: registry {}, raw {}, expected {}\n", registry_rows, raw_rows, expected);
      exit_code = 1;
    } else if (check && ratio < kTarget) {
      exit_code = 1;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "asg_bench_registry_logging: {}\n", e.what());
    exit_code = 1;
  }
  fs::remove_all(dir);
  return exit_code;
}
