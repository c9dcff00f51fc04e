#include "asg/data/tar_shards.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <regex>

#include "asg/error.h"

namespace asg {

namespace fs = std::filesystem;

struct ShardReader::Member {
  std::string name;
  uint64_t offset = 0;
  std::vector<uint8_t> bytes;
  std::string refused;
  bool skip = false;  // a directory entry: not part of any sample
};

namespace {

// "dir/000042.tar.gz" -> key "dir/000042", extension "tar.gz"
std::pair<std::string, std::string> split_member_name(const std::string& name) {
  const size_t slash = name.rfind('/');
  const size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
  if (dot == std::string::npos) return {name, ""};
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return {name.substr(0, dot), ext};
}

std::string unsafe_name(const std::string& name) {
  if (!name.empty() && name[0] == '/') return fmt::format("member '{}' has an absolute path", name);
  for (const auto& part : fs::path(name))
    if (part == "..") return fmt::format("member '{}' leaves the shard ('..')", name);
  return "";
}

}  // namespace

ShardReader::ShardReader(const fs::path& shard, uint64_t offset, bool read_data, std::vector<std::string> keep)
    : shard_(shard), base_(offset), read_data_(read_data), keep_(std::move(keep)) {
  fd_ = ::open(shard.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw data_error(fmt::format("{}: cannot open the shard", shard.string()));
  if (offset != 0 && ::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) != static_cast<off_t>(offset)) {
    ::close(fd_);
    throw data_error(fmt::format("{}: cannot seek to byte {}", shard.string(), offset));
  }
  archive_ = archive_read_new();
  archive_read_support_format_tar(archive_);  // ustar, pax and GNU tar
  if (archive_read_open_fd(archive_, fd_, 1 << 16) != ARCHIVE_OK) {
    const std::string why = archive_error_string(archive_) ? archive_error_string(archive_) : "unknown error";
    archive_read_free(archive_);
    ::close(fd_);
    throw data_error(fmt::format("{}: not a tar shard: {}", shard.string(), why));
  }
}

ShardReader::~ShardReader() {
  if (archive_) archive_read_free(archive_);
  if (fd_ >= 0) ::close(fd_);
}

bool ShardReader::advance() {
  if (ended_) return false;
  archive_entry* entry = nullptr;
  const int status = archive_read_next_header(archive_, &entry);
  if (status == ARCHIVE_EOF) {
    ended_ = true;
    return false;
  }
  if (status < ARCHIVE_WARN)
    throw data_error(fmt::format("{}: malformed tar shard near byte {}: {}", shard_.string(),
                                 base_ + static_cast<uint64_t>(archive_read_header_position(archive_)),
                                 archive_error_string(archive_) ? archive_error_string(archive_) : "unknown error"));
  auto member = std::make_unique<Member>();
  const char* name = archive_entry_pathname(entry);
  member->name = name ? name : "";
  member->offset = base_ + static_cast<uint64_t>(archive_read_header_position(archive_));
  const auto type = archive_entry_filetype(entry);
  if (type == AE_IFDIR) {
    member->skip = true;
  } else if (std::string why = unsafe_name(member->name); !why.empty()) {
    member->refused = why;
  } else if (type != AE_IFREG) {
    member->refused = fmt::format("member '{}' is not a regular file (a link or a device)", member->name);
  } else {
    const auto ext = split_member_name(member->name).second;
    if (read_data_ || std::find(keep_.begin(), keep_.end(), ext) != keep_.end()) {
      const la_int64_t size = archive_entry_size(entry);
      member->bytes.resize(static_cast<size_t>(std::max<la_int64_t>(size, 0)));
      size_t got = 0;
      while (got < member->bytes.size()) {
        const la_ssize_t n = archive_read_data(archive_, member->bytes.data() + got, member->bytes.size() - got);
        if (n < 0)
          throw data_error(fmt::format("{}: member '{}' is truncated: {}", shard_.string(), member->name,
                                       archive_error_string(archive_) ? archive_error_string(archive_) : "read error"));
        if (n == 0) break;
        got += static_cast<size_t>(n);
      }
      if (got != member->bytes.size())
        throw data_error(fmt::format("{}: member '{}' is truncated ({} of {} bytes)", shard_.string(), member->name, got,
                                     member->bytes.size()));
    }
  }
  pending_ = std::move(member);
  return true;
}

std::optional<ShardSample> ShardReader::next() {
  while (!pending_ || pending_->skip) {
    pending_.reset();
    if (!advance()) return std::nullopt;
  }
  ShardSample sample;
  sample.key = split_member_name(pending_->name).first;
  sample.offset = pending_->offset;
  while (pending_ && (pending_->skip || split_member_name(pending_->name).first == sample.key)) {
    if (!pending_->skip) {
      if (!pending_->refused.empty() && sample.refused.empty()) sample.refused = pending_->refused;
      auto ext = split_member_name(pending_->name).second;
      sample.parts[ext] = std::move(pending_->bytes);
    }
    pending_.reset();
    if (!advance()) break;
  }
  return sample;
}

ShardWriter::ShardWriter(const fs::path& shard) : shard_(shard) {
  archive_ = archive_write_new();
  archive_write_set_format_pax_restricted(archive_);  // ustar headers, pax only for long names
  if (archive_write_open_filename(archive_, shard.c_str()) != ARCHIVE_OK) {
    const std::string why = archive_error_string(archive_) ? archive_error_string(archive_) : "unknown error";
    archive_write_free(archive_);
    archive_ = nullptr;
    throw data_error(fmt::format("{}: cannot create the shard: {}", shard.string(), why));
  }
}

void ShardWriter::add(const std::string& name, const void* data, size_t size) {
  if (!archive_) throw internal_error("ShardWriter::add after close");
  archive_entry* entry = archive_entry_new();
  archive_entry_set_pathname(entry, name.c_str());
  archive_entry_set_size(entry, static_cast<la_int64_t>(size));
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_perm(entry, 0644);
  archive_entry_set_mtime(entry, 0, 0);  // reproducible: the same samples give the same bytes
  const bool ok = archive_write_header(archive_, entry) == ARCHIVE_OK &&
                  archive_write_data(archive_, data, size) == static_cast<la_ssize_t>(size);
  archive_entry_free(entry);
  if (!ok)
    throw data_error(fmt::format("{}: cannot write member '{}': {}", shard_.string(), name,
                                 archive_error_string(archive_) ? archive_error_string(archive_) : "unknown error"));
}

void ShardWriter::close() {
  if (!archive_) return;
  const int status = archive_write_close(archive_);
  archive_write_free(archive_);
  archive_ = nullptr;
  if (status != ARCHIVE_OK) throw data_error(fmt::format("{}: cannot finish the shard", shard_.string()));
}

ShardWriter::~ShardWriter() {
  if (archive_) {
    archive_write_close(archive_);
    archive_write_free(archive_);
  }
}

std::vector<fs::path> expand_shard_patterns(const std::vector<std::string>& patterns, const fs::path& relative_to) {
  std::vector<fs::path> out;
  static const std::regex range(R"(\{(\d+)\.\.(\d+)\})");
  for (const auto& raw : patterns) {
    std::string pattern = raw;
    if (!relative_to.empty() && !fs::path(pattern).is_absolute()) pattern = (relative_to / pattern).string();
    std::vector<std::string> expanded;
    std::smatch m;
    if (std::regex_search(pattern, m, range)) {
      const std::string first = m[1].str(), last = m[2].str();
      const long long lo = std::stoll(first), hi = std::stoll(last);
      if (hi < lo) throw config_error(fmt::format("shard pattern '{}': the range {{{}..{}}} is empty", raw, first, last));
      if (hi - lo > 10000000) throw config_error(fmt::format("shard pattern '{}': more than 10M shards", raw));
      for (long long i = lo; i <= hi; ++i)
        expanded.push_back(m.prefix().str() + fmt::format("{:0{}}", i, first.size()) + m.suffix().str());
    } else {
      expanded.push_back(pattern);
    }
    std::vector<fs::path> matched;
    for (const auto& p : expanded) {
      if (p.find_first_of("*?[") != std::string::npos) {
        glob_t g{};
        if (::glob(p.c_str(), 0, nullptr, &g) == 0)
          for (size_t i = 0; i < g.gl_pathc; ++i) matched.emplace_back(g.gl_pathv[i]);
        globfree(&g);
      } else if (fs::is_directory(p)) {
        for (const auto& e : fs::directory_iterator(p))
          if (e.path().extension() == ".tar") matched.push_back(e.path());
      } else if (fs::exists(p)) {
        matched.emplace_back(p);
      } else {
        throw data_error(fmt::format("shard pattern '{}': {} does not exist", raw, p));
      }
    }
    if (matched.empty()) throw data_error(fmt::format("shard pattern '{}' matches no file", raw));
    std::sort(matched.begin(), matched.end());
    out.insert(out.end(), matched.begin(), matched.end());
  }
  return out;
}

}  // namespace asg
