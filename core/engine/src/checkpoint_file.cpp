// The atomic archive write: a temporary file, fsync, rename, with the crash tests' failpoint.
#include "asg/checkpoint_file.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "asg/error.h"

namespace asg {

void save_archive_atomically(torch::serialize::OutputArchive& archive, const std::string& path, int64_t failpoint_step) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw data_error(fmt::format("{}: cannot write here ({})", tmp, std::strerror(errno)));
  int failure = 0;  // errno of the first failed write, fsync or rename
  // Failpoint for the crash tests: ASG_FAILPOINT_KILL_IN_CHECKPOINT_WRITE=<step> SIGKILLs this process
  // once part of that step's checkpoint is in the temporary file, as the OOM killer or a lost node would.
  // The e2e suite uses it to show that a torn write costs no more than the checkpoint interval.
  const char* failpoint = std::getenv("ASG_FAILPOINT_KILL_IN_CHECKPOINT_WRITE");
  const bool die_midway = failpoint && failpoint_step >= 0 && std::to_string(failpoint_step) == failpoint;
  size_t written = 0;
  try {
    archive.save_to([&](const void* data, size_t size) -> size_t {
      if (die_midway && written > 0) {
        ::fsync(fd);
        std::raise(SIGKILL);
      }
      written += size;
      const char* p = static_cast<const char*>(data);
      for (size_t left = size; failure == 0 && left > 0;) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) failure = n < 0 ? errno : EIO;
        else p += n, left -= static_cast<size_t>(n);
      }
      return failure == 0 ? size : 0;
    });
  } catch (const c10::Error&) {
    if (failure == 0) failure = EIO;  // LibTorch refused the short write; the reason is ours
  }
  if (failure == 0 && ::fsync(fd) != 0) failure = errno;
  ::close(fd);
  if (failure == 0 && std::rename(tmp.c_str(), path.c_str()) != 0) failure = errno;
  if (failure != 0) {
    std::remove(tmp.c_str());
    throw data_error(fmt::format("{}: writing failed ({}); the previous file, if any, is intact", path,
                                 std::strerror(failure)));
  }
}

}  // namespace asg
