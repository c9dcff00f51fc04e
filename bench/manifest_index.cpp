// Benchmark: building the index of a large manifest (Manifest::read, what sticker_files and
// `asg data index` do) from a generated VSD2M-style JSONL file of N rows (2M by default, the size of
// VSD2M). Targets (issue 7): < 60 s and < 1 GiB for 2M rows. Each side runs in a child process so its
// peak memory (ru_maxrss) is its own; the baseline is reading the same lines without parsing them.
//
//   asg_bench_manifest_index [--rows N]
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "asg/data/manifest.h"
#include "bench_args.h"

namespace fs = std::filesystem;

namespace {

struct ChildResult {
  double seconds = 0;
  double peak_mib = 0;
  int64_t rows = 0;
};

// Runs `work` (returning a row count) in a child process; its wall time and peak resident memory.
template <typename Fn>
ChildResult in_child(Fn work) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) std::abort();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    int64_t rows = -1;
    try {
      rows = work();
    } catch (const std::exception& e) {
      fmt::print(stderr, "asg_bench_manifest_index: {}\n", e.what());
    }
    if (write(pipe_fds[1], &rows, sizeof rows) != sizeof rows) _exit(3);
    _exit(rows < 0 ? 1 : 0);
  }
  close(pipe_fds[1]);
  ChildResult r;
  if (read(pipe_fds[0], &r.rows, sizeof r.rows) != sizeof r.rows) r.rows = -1;
  close(pipe_fds[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.peak_mib = usage.ru_maxrss / 1024.0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) r.rows = -1;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  asg::bench::BenchArgs args({{"rows", 2000000, 1}});
  if (!args.parse(argc, argv)) return 2;
  const int64_t rows = args["rows"];
  const fs::path dir = fs::temp_directory_path() / fmt::format("asg_bench_manifest_{}", getpid());
  fs::create_directories(dir);
  const fs::path file = dir / "records.jsonl";
  {
    // VSD2M-like records (the fields its code reads), ~330 bytes each; written as a stream.
    std::ofstream out(file);
    const char* words[] = {"cat", "dog", "waving", "laughing", "jumping", "cartoon", "character", "happy", "hello"};
    for (int64_t i = 0; i < rows; ++i) {
      out << fmt::format(R"({{"md5": "{:016x}{:016x}", "fmt": "gif", "nframes": {}, "keyframe_idx": [0, {}, {}], )"
                         R"("visual_path": "gifs/{:03}/{:016x}.gif", "eng_cap": "a {} {} {} a {} video of a {} {}", )"
                         R"("caption": "...", "meanings": "{}", "domain": "{}"}})"
                         "\n",
                         i * 0x9e3779b97f4a7c15ull, i, 8 + i % 40, 2 + i % 3, 5 + i % 3, i % 997, i, words[i % 9],
                         words[(i / 9) % 9], words[(i / 81) % 9], words[(i / 7) % 9], words[(i / 11) % 9],
                         words[(i / 13) % 9], words[i % 5], i % 3 ? "cartoon" : "real");
    }
  }
  const double file_mib = static_cast<double>(fs::file_size(file)) / 1048576.0;

  const ChildResult lines = in_child([&] {
    std::ifstream in(file);
    std::string l;
    int64_t n = 0;
    while (std::getline(in, l)) n += l.empty() ? 0 : 1;
    return n;
  });
  const ChildResult index = in_child([&] {
    asg::ManifestOptions options;
    options.format = asg::ManifestFormat::Vsd2m;
    options.check_files = false;  // the files are not there: this measures the index
    const auto m = asg::Manifest::read(file, options);
    return static_cast<int64_t>(m.size());
  });
  fs::remove_all(dir);
  if (lines.rows != rows || index.rows != rows) {
    fmt::print(stderr, "asg_bench_manifest_index: read {} lines and indexed {} rows of {}\n", lines.rows, index.rows, rows);
    return 1;
  }
  fmt::print("manifest index: {} VSD2M-style rows ({:.0f} MiB of JSONL)\n", rows, file_mib);
  fmt::print("  read lines only (baseline) : {:7.2f} s, peak {:7.1f} MiB\n", lines.seconds, lines.peak_mib);
  fmt::print("  Manifest::read (the index) : {:7.2f} s, peak {:7.1f} MiB   x{:.1f} the baseline's time\n", index.seconds,
             index.peak_mib, index.seconds / lines.seconds);
  fmt::print("  targets for 2M rows: < 60 s and < 1024 MiB\n");
  return 0;
}
