// asg serve: a local, read-only web view of the registry. Leaderboards per benchmark, a page per run (config,
// provenance, results, samples, and a training-loss curve that updates while the run trains), and the compare
// view. It reads the registry through the same code as the CLI, opened read-only, and never writes it.
//
// Routes, GET only (any other method: 405 with Allow: GET; any other path: 404):
//   /                              benchmarks, the newest runs, a compare form
//   /leaderboard/<benchmark>       the HTML leaderboard; ?runs=1, ?group_by=KEY, ?where=K=V (repeatable)
//   /runs/<run id>                 one run
//   /api/runs/<run id>/curve       {"status", "points", "svg"}: what the run page polls while the run is RUNNING
//   /files/<run id>/<path>         a file of the run's folder, only if the run recorded it as an artifact
//   /compare?runs=A&runs=B[...]    what differs between runs
// Every value shown is HTML-escaped; run ids may be abbreviated as in the CLI.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>

namespace asg {

struct ServeOptions {
  std::filesystem::path registry_path = "runs/registry.sqlite";
  std::filesystem::path runs_dir = "runs";
  std::string bind = "127.0.0.1";  // loopback unless told otherwise
  int port = 8765;                 // 0: any free port
};

// Binds, calls `on_listening(port)` once the socket is bound, and serves until `stop` becomes true. asg::Error(Config)
// when the address cannot be bound (naming it) or the registry cannot be read.
void serve_registry(const ServeOptions& options, const std::function<void(int port)>& on_listening, const std::atomic<bool>& stop);

}  // namespace asg
