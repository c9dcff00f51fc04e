// Packing a run's results into one BLOB and reading them back; rewriting the packed column.
#include "packed_results.h"

#include <bit>
#include <cmath>
#include <cstdint>

namespace asg::registry_store {

// A run's own results in recorded order, as one BLOB: u32 count, then per value u32 key length, the key's bytes,
// the value as IEEE-754 binary64 (NaN where the results table holds NULL) and one byte higher_is_better; integers
// little-endian whatever the host, like SQLite's own file format, so a registry file reads the same anywhere.

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

std::string pack_results(const std::vector<ResultValue>& results) {
  std::string out;
  put_u32(out, static_cast<uint32_t>(results.size()));
  for (const auto& r : results) {
    put_u32(out, static_cast<uint32_t>(r.key.size()));
    out += r.key;
    const uint64_t bits = std::bit_cast<uint64_t>(std::isfinite(r.value) ? r.value : std::nan(""));
    for (int i = 0; i < 8; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
    out += static_cast<char>(r.higher_is_better ? 1 : 0);
  }
  return out;
}

bool unpack_results(const unsigned char* data, size_t size, std::vector<ResultValue>& out) {
  out.clear();
  if (size < 4) return false;
  const uint64_t count = get_le(data, 4);
  size_t at = 4;
  if (count > size) return false;  // every value takes more than a byte: a count this large is damage, not data
  out.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (size - at < 4) return false;
    const uint64_t key_size = get_le(data + at, 4);
    at += 4;
    if (size - at < key_size + 9) return false;
    ResultValue v;
    v.key.assign(reinterpret_cast<const char*>(data + at), key_size);
    at += key_size;
    v.value = std::bit_cast<double>(get_le(data + at, 8));
    v.higher_is_better = data[at + 8] != 0;
    at += 9;
    out.push_back(std::move(v));
  }
  return at == size;
}

std::vector<ResultValue> read_values(Statement& s) {
  std::vector<ResultValue> out;
  while (s.step()) out.push_back({s.text(0), s.real(1), s.integer(2) != 0});
  return out;
}

namespace {

constexpr const char* kWritePacked = "UPDATE runs SET results_packed = ?2 WHERE id = ?1";

// Steps `update` (kWritePacked) with `values` packed as the run's results.
void write_packed(Statement& update, const std::string& run_id, const std::vector<ResultValue>& values) {
  const std::string packed = pack_results(values);
  update.bind(1, run_id);
  sqlite3_bind_blob(update.raw(), 2, packed.data(), static_cast<int>(packed.size()), SQLITE_STATIC);
  update.step();
  update.reset();
}

}  // namespace

void repack_results(sqlite3* db, const std::filesystem::path& file, const std::string& run_id) {
  Statement read(db, "SELECT key, value, higher_is_better FROM results WHERE run_id = ?1 ORDER BY ordinal", file);
  read.bind(1, run_id);
  Statement update(db, kWritePacked, file);
  write_packed(update, run_id, read_values(read));
}

void repack_every_run(sqlite3* db, const std::filesystem::path& file) {
  // One ordered pass over the covering index and one prepared UPDATE: a registry of 100k runs repacks in seconds.
  Statement read(db, "SELECT run_id, key, value, higher_is_better FROM results INDEXED BY results_cover ORDER BY run_id, ordinal", file);
  Statement update(db, kWritePacked, file);
  std::string run_id;
  std::vector<ResultValue> values;
  auto flush = [&] {
    if (run_id.empty()) return;
    write_packed(update, run_id, values);
    values.clear();
  };
  while (read.step()) {
    const char* id = reinterpret_cast<const char*>(sqlite3_column_text(read.raw(), 0));
    if (run_id != id) {
      flush();
      run_id = id;
    }
    values.push_back({read.text(1), read.real(2), read.integer(3) != 0});
  }
  flush();
}

}  // namespace asg::registry_store
