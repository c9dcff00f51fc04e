// WebDataset-style tar shards through libarchive: a sample is the run of consecutive members sharing a
// key (the member path up to the first '.' of its file name), e.g. 000042.gif + 000042.json. Shards are
// read sequentially (no member is looked up by name), which is how a 2M-sample corpus is read without 2M
// random file opens; a sample can also be re-read from the byte offset of its first header, since a tar
// stream may start at any entry. No torch.
//
// Safety: members whose names are absolute or contain ".." and members that are not regular files
// (symlinks, hard links, devices) are never extracted; ShardSample::refused says why.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct archive;  // libarchive's handle (its header stays out of this one)

namespace asg {

struct ShardSample {
  std::string key;                                    // "000042" or "dir/000042"
  uint64_t offset = 0;                                // byte offset of its first member's header
  std::map<std::string, std::vector<uint8_t>> parts;  // by extension after the key ("gif", "json", "txt")
  std::string refused;                                // non-empty: why this sample cannot be used
};

// Reads one shard's samples in order. asg::Error(Data) naming the shard for a malformed archive.
class ShardReader {
 public:
  // Starts at byte `offset` (0, or a ShardSample::offset from an earlier pass). With read_data = false,
  // only the parts named in `keep` (e.g. {"txt", "json"}) are read; the others are skipped (seeked over).
  ShardReader(const std::filesystem::path& shard, uint64_t offset = 0, bool read_data = true,
              std::vector<std::string> keep = {});
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  std::optional<ShardSample> next();

 private:
  struct Member;
  bool advance();  // reads the next member into pending_; false at the end
  std::filesystem::path shard_;
  ::archive* archive_ = nullptr;
  int fd_ = -1;
  uint64_t base_ = 0;
  bool read_data_;
  std::vector<std::string> keep_;
  std::unique_ptr<Member> pending_;
  bool ended_ = false;
};

// Writes a shard member by member (ustar/pax, uncompressed, so offsets stay meaningful).
class ShardWriter {
 public:
  explicit ShardWriter(const std::filesystem::path& shard);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;
  void add(const std::string& name, const void* data, size_t size);
  void close();  // also done by the destructor (which cannot report errors)

 private:
  std::filesystem::path shard_;
  ::archive* archive_ = nullptr;
};

// Shard paths from patterns: "{000000..000099}" ranges (zero padding kept), then '*' and '?' globs in the
// file name, then directories (every *.tar in them); sorted within each pattern. asg::Error(Data) for a
// pattern that matches nothing.
std::vector<std::filesystem::path> expand_shard_patterns(const std::vector<std::string>& patterns,
                                                         const std::filesystem::path& relative_to = {});

}  // namespace asg
