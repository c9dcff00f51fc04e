// The registry store's SQLite helpers: one prepared statement (errors name the registry file, columns
// readable by name), running SQL with its status, and the error a failed statement becomes. Private to
// the store (registry/store/src).
#pragma once

#include <fmt/format.h>
#include <sqlite3.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "asg/error.h"

namespace asg::registry_store {

// How long a connection waits for another's lock before "database is locked". Write transactions are
// short (a metric flush is one), so this is only reached when a writer hangs while holding the lock.
constexpr int kBusyTimeoutMs = 10000;

// One prepared statement. Errors name the registry file; the path is kept by reference and only turned
// into a string when there is an error, so stepping through many rows allocates nothing.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::filesystem::path& file) : db_(db), file_(file) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
      throw registry_error(fmt::format("{}: cannot prepare statement: {}", file.string(), sqlite3_errmsg(db)));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& bind(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.c_str(), -1, SQLITE_TRANSIENT); return *this; }
  // Binds without copying: `v` must stay alive and unchanged until the statement is stepped, reset and
  // rebound (or destroyed).
  Statement& bind_static(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Statement& bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); return *this; }
  Statement& bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); return *this; }
  Statement& bind_null(int i) { sqlite3_bind_null(stmt_, i); return *this; }
  // true while a row is available
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw registry_error(fmt::format("{}: {}", file_.string(), sqlite3_errmsg(db_)));
  }
  void reset() { sqlite3_reset(stmt_); sqlite3_clear_bindings(stmt_); }
  // Ready to step again; the bindings stay, for loops that rebind every parameter anyway.
  void rewind() { sqlite3_reset(stmt_); }
  std::string text(int col) const {
    auto p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL ? std::nan("") : sqlite3_column_double(stmt_, col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  sqlite3_stmt* raw() const { return stmt_; }
  // The index of the result column called `name` (its AS alias, else its column name). Readers of wide rows
  // look their columns up by name once per statement, so a SELECT's column order cannot misread a field.
  int column(std::string_view name) const {
    const int count = sqlite3_column_count(stmt_);
    for (int i = 0; i < count; ++i)
      if (const char* column_name = sqlite3_column_name(stmt_, i); column_name && name == column_name) return i;
    throw internal_error(fmt::format("{}: the statement has no column '{}'", file_.string(), name));
  }

 private:
  sqlite3* db_;
  const std::filesystem::path& file_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Runs SQL; returns the SQLite result code and, when it is not SQLITE_OK, the message in `error`.
inline int exec_status(sqlite3* db, const std::string& sql, std::string& error) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) error = err ? err : sqlite3_errmsg(db);
  sqlite3_free(err);
  return rc;
}

[[noreturn]] inline void throw_sql_error(const std::filesystem::path& file, const std::string& message) {
  if (message.find("file is not a database") != std::string::npos)
    throw registry_error(fmt::format("{}: not an ASG Lab registry (not a SQLite database)", file.string()));
  throw registry_error(fmt::format("{}: {}", file.string(), message));
}

}  // namespace asg::registry_store
