// runs.results_packed (schema 6): a run's own results in recorded order as one BLOB beside its row, so a
// leaderboard reads a run and its results in one pass. Private to the store.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "asg/registry.h"
#include "sqlite_statement.h"

namespace asg::registry_store {

std::string pack_results(const std::vector<ResultValue>& results);
// false when `data` is not a whole packed list (the caller then reads the results table).
bool unpack_results(const unsigned char* data, size_t size, std::vector<ResultValue>& out);
// The rows of `SELECT key, value, higher_is_better ...` in their order.
std::vector<ResultValue> read_values(Statement& s);
// Rewrites runs.results_packed of `run_id` from its rows in the results table (inside the caller's transaction).
void repack_results(sqlite3* db, const std::filesystem::path& file, const std::string& run_id);
// The same for every run, in one ordered pass (the 5 -> 6 migration, `Registry::repack_all_results`).
void repack_every_run(sqlite3* db, const std::filesystem::path& file);

}  // namespace asg::registry_store
