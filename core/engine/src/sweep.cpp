#include "asg/sweep.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "asg/error.h"
#include "asg/toml_where.h"
#include "asg/experiment.h"
#include "asg/git_state.h"
#include "asg/plugin_load_policy.h"
#include "asg/hash.h"
#include "asg/interrupt.h"
#include "asg/plugin_catalog.h"
#include "asg/names.h"
#include "asg/files.h"

extern char** environ;

namespace asg {

namespace fs = std::filesystem;

namespace {

std::string where(const fs::path& file, const toml::node& node) { return toml_where(file, node); }

// A value as the TOML text `--set key=...` reads back to the same value. Floats in their shortest exact form
// (5e-4 as 0.0005, not toml++'s 0.00050000000000000001), kept floats (1.0, not 1).
std::string toml_text(const toml::node& node) {
  if (const auto* f = node.as_floating_point()) {
    std::string text = fmt::format("{}", f->get());
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";  // "n": inf and nan stay as they are
    return text;
  }
  std::ostringstream text;
  node.visit([&](auto&& n) { text << toml::toml_formatter(n, toml::format_flags::none); });
  return text.str();
}

// An axis of the sweep: a dotted key and its values (TOML text), and where the file gives it.
struct Axis {
  std::string key;
  std::vector<std::string> values;
  std::string where;
};

// The leaves of a table as dotted keys: `"train.lr" = ...` and `train.lr = ...` (a nested table) alike.
void leaves(const toml::table& table, const std::string& prefix, std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (auto&& [key, value] : table) {
    const std::string k = prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (const auto* t = value.as_table()) leaves(*t, k, out);
    else out.emplace_back(k, &value);
  }
}

std::vector<Axis> read_axes(const fs::path& file, const toml::table& root, const char* section) {
  std::vector<Axis> axes;
  const auto* table = root.get(section);
  if (!table) return axes;
  if (!table->is_table()) throw config_error(fmt::format("{}: [{}] must be a table of \"key\" = [values]", where(file, *table), section));
  std::vector<std::pair<std::string, const toml::node*>> entries;
  leaves(*table->as_table(), "", entries);
  for (const auto& [key, node] : entries) {
    const auto* list = node->as_array();
    if (!list || list->empty())
      throw config_error(fmt::format("{}: [{}] \"{}\" must be a non-empty list of values, e.g. \"{}\" = [1, 2]", where(file, *node), section,
                                     key, key));
    Axis axis{key, {}, where(file, *node)};
    for (const auto& v : *list) axis.values.push_back(toml_text(v));
    axes.push_back(std::move(axis));
  }
  return axes;
}

}  // namespace

const char* point_state_name(PointState state) {
  switch (state) {
    case PointState::Pending: return "PENDING";
    case PointState::Running: return "RUNNING";
    case PointState::Finished: return "FINISHED";
    case PointState::Failed: return "FAILED";
    case PointState::Killed: return "KILLED";
  }
  return "?";
}

SweepPlan plan_sweep(const fs::path& file) {
  if (!fs::is_regular_file(file)) throw config_error(fmt::format("{}: no such sweep file", file.string()));
  SweepPlan plan;
  plan.file = file;
  plan.text = read_text_file(file);
  toml::table root;
  try {
    root = toml::parse(plan.text, file.string());
  } catch (const toml::parse_error& e) {
    throw config_error(fmt::format("{}:{}:{}: sweep file is not valid TOML: {}", file.string(), e.source().begin.line,
                                   e.source().begin.column, e.description()));
  }
  static const std::vector<std::string> kKeys = {"name", "description", "experiment", "seeds", "set", "grid", "zip"};
  for (auto&& [key, value] : root) {
    const std::string k(key.str());
    if (std::find(kKeys.begin(), kKeys.end(), k) == kKeys.end())
      throw config_error(fmt::format("{}: unknown key '{}' in a sweep file (valid: {}).{}", where(file, value), k, join(kKeys, ", "),
                                     did_you_mean(k, kKeys)));
  }
  // One experiment file, or a list of them: an axis over files (the outermost), for arms that differ in more than
  // one key, such as the systems of a model zoo.
  const toml::node* experiment = root.get("experiment");
  std::vector<const toml::node*> experiment_nodes;
  if (experiment && experiment->is_string()) experiment_nodes.push_back(experiment);
  if (experiment && experiment->is_array())
    for (const auto& e : *experiment->as_array()) experiment_nodes.push_back(&e);
  if (experiment_nodes.empty())
    throw config_error(fmt::format("{}: a sweep file needs experiment = \"<experiment file, relative to the sweep file>\" (or a list of "
                                   "them)",
                                   experiment ? where(file, *experiment) : file.string()));
  for (const toml::node* node : experiment_nodes) {
    const auto* name = node->as_string();
    if (!name) throw config_error(fmt::format("{}: experiment entries must be file names (strings)", where(file, *node)));
    const fs::path path = (file.parent_path() / name->get()).lexically_normal();  // as the runs record it: no "sweeps/../"
    if (!fs::is_regular_file(path))
      throw config_error(fmt::format("{}: experiment '{}' does not exist (looked for {})", where(file, *node), name->get(), path.string()));
    if (std::find(plan.experiments.begin(), plan.experiments.end(), path) != plan.experiments.end())
      throw config_error(fmt::format("{}: experiment '{}' is listed twice", where(file, *node), name->get()));
    plan.experiments.push_back(path);
  }
  plan.name = file.stem().string();
  if (const auto* name = root.get("name")) {
    if (!name->is_string() || name->as_string()->get().empty())
      throw config_error(fmt::format("{}: name must be a non-empty string", where(file, *name)));
    plan.name = name->as_string()->get();
  }

  std::vector<std::string> fixed;
  std::vector<std::pair<std::string, std::string>> fixed_where;  // override, where
  if (const auto* set = root.get("set")) {
    if (!set->is_table()) throw config_error(fmt::format("{}: [set] must be a table of \"key\" = value", where(file, *set)));
    std::vector<std::pair<std::string, const toml::node*>> entries;
    leaves(*set->as_table(), "", entries);
    for (const auto& [key, node] : entries) {
      fixed.push_back(key + "=" + toml_text(*node));
      fixed_where.emplace_back(fixed.back(), where(file, *node));
    }
  }
  const std::vector<Axis> grid = read_axes(file, root, "grid");
  const std::vector<Axis> zip = read_axes(file, root, "zip");
  for (const auto& axis : zip)
    if (axis.values.size() != zip.front().values.size())
      throw config_error(fmt::format("{}: [zip] \"{}\" has {} values but \"{}\" has {}; zipped lists are taken together and need one length",
                                     axis.where, axis.key, axis.values.size(), zip.front().key, zip.front().values.size()));
  std::vector<std::string> seeds;
  std::string seeds_where = file.string();
  if (const auto* node = root.get("seeds")) {
    seeds_where = where(file, *node);
    const auto* list = node->as_array();
    if (!list || list->empty()) throw config_error(fmt::format("{}: seeds must be a non-empty list of integers, e.g. [0, 1, 2]", seeds_where));
    for (const auto& s : *list) {
      const auto* i = s.as_integer();
      if (!i || i->get() < 0) throw config_error(fmt::format("{}: seeds: every seed must be an integer >= 0", where(file, s)));
      seeds.push_back(std::to_string(i->get()));
    }
  }
  std::set<std::string> keys;
  auto claim = [&](const std::string& key, const std::string& at) {
    if (!keys.insert(key).second)
      throw config_error(fmt::format("{}: \"{}\" is given twice in the sweep ([set], [grid], [zip] and seeds each name a key once)", at, key));
  };
  for (const auto& [o, at] : fixed_where) claim(o.substr(0, o.find('=')), at);
  for (const auto& a : grid) claim(a.key, a.where);
  for (const auto& a : zip) claim(a.key, a.where);
  if (!seeds.empty()) claim("runtime.seed", seeds_where);

  // Each key and value alone first, so that an unknown key or a bad value is named where the sweep file gives it.
  PluginCatalog catalog;
  auto check = [&](const std::vector<std::string>& overrides, const std::string& at, const std::string& what) {
    for (const auto& experiment : plan.experiments) {
      try {
        (void)load_experiment(experiment, overrides, catalog);
      } catch (const Error& e) {
        throw config_error(fmt::format("{}: {}{}: {}", at, what,
                                       plan.experiments.size() > 1 ? " (with " + experiment.filename().string() + ")" : "", e.what()));
      }
    }
  };
  check(fixed, fixed_where.empty() ? file.string() : fixed_where.front().second, "[set]");
  for (const auto* axes : {&grid, &zip})
    for (const auto& axis : *axes)
      for (const auto& value : axis.values) {
        auto overrides = fixed;
        overrides.push_back(axis.key + "=" + value);
        check(overrides, axis.where, fmt::format("\"{}\" = {}", axis.key, value));
      }
  for (const auto& seed : seeds) {
    auto overrides = fixed;
    overrides.push_back("runtime.seed=" + seed);
    check(overrides, seeds_where, "seed " + seed);
  }

  // The points: grid (first key slowest) × zip × seeds.
  std::vector<std::vector<std::pair<std::string, std::string>>> combos = {{}};
  for (const auto& axis : grid) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& c : combos)
      for (const auto& v : axis.values) {
        next.push_back(c);
        next.back().emplace_back(axis.key, v);
      }
    combos = std::move(next);
  }
  if (!zip.empty()) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& c : combos)
      for (size_t i = 0; i < zip.front().values.size(); ++i) {
        next.push_back(c);
        for (const auto& axis : zip) next.back().emplace_back(axis.key, axis.values[i]);
      }
    combos = std::move(next);
  }
  if (!seeds.empty()) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& c : combos)
      for (const auto& s : seeds) {
        next.push_back(c);
        next.back().emplace_back("runtime.seed", s);
      }
    combos = std::move(next);
  }
  std::map<std::string, size_t> seen;
  std::string identity;
  const size_t total = combos.size() * plan.experiments.size();
  for (const auto& experiment : plan.experiments)
  for (const auto& combo : combos) {
    SweepPoint point;
    point.index = plan.points.size();
    point.experiment = experiment;
    point.overrides = fixed;
    std::vector<std::string> label;
    if (plan.experiments.size() > 1) label.push_back("experiment=" + experiment.filename().string());
    for (const auto& [key, value] : combo) {
      point.overrides.push_back(key + "=" + value);
      label.push_back(key + "=" + value);
    }
    point.label = label.empty() ? "(the experiment as it is)" : join(label, " ");
    try {
      point.config_hash = load_experiment(point.experiment, point.overrides, catalog).config_hash;
    } catch (const Error& e) {
      throw config_error(fmt::format("{}: point {} of {} ({}): {}", file.string(), point.index + 1, total, point.label, e.what()));
    }
    if (auto [it, fresh] = seen.emplace(point.config_hash, point.index); !fresh)
      throw config_error(fmt::format("{}: points {} ({}) and {} ({}) are the same config; a sweep runs each config once", file.string(),
                                     it->second + 1, plan.points[it->second].label, point.index + 1, point.label));
    identity += point.config_hash + "\n";
    plan.points.push_back(std::move(point));
  }
  plan.hash = sha256_hex(identity);
  return plan;
}

namespace {

// A point's state from its runs (newest first): FINISHED if any finished, else RUNNING if any runs, else the newest's.
PointStatus status_of(const std::vector<RunRecord>& runs) {
  if (runs.empty()) return {};
  auto finished = std::find_if(runs.begin(), runs.end(), [](const RunRecord& r) { return r.status == RunStatus::Finished; });
  auto running = std::find_if(runs.begin(), runs.end(),
                              [](const RunRecord& r) { return r.status == RunStatus::Running || r.status == RunStatus::Queued; });
  if (finished != runs.end()) return {PointState::Finished, finished->id};
  if (running != runs.end()) return {PointState::Running, running->id};
  return {runs.front().status == RunStatus::Killed ? PointState::Killed : PointState::Failed, runs.front().id};
}

// One point's state, through the config-hash index.
PointStatus point_status(const Registry& registry, const SweepPoint& point) {
  RunQuery query;
  query.role = RunRole::Run;
  query.config_hash = point.config_hash;
  query.with_large_texts = false;
  return status_of(registry.list_runs(query));
}

}  // namespace

std::vector<PointStatus> sweep_point_status(const SweepPlan& plan, const fs::path& registry_path) {
  std::vector<PointStatus> out(plan.points.size());
  if (!fs::exists(registry_path)) return out;
  Registry registry(registry_path);
  // One pass over the runs, by config hash; newest first, so the first seen is the newest.
  std::map<std::string, std::vector<RunRecord>> by_hash;
  std::set<std::string> wanted;
  for (const auto& p : plan.points) wanted.insert(p.config_hash);
  RunQuery query;
  query.role = RunRole::Run;
  query.with_large_texts = false;
  for (auto& r : registry.list_runs(query))
    if (wanted.count(r.config_hash)) by_hash[r.config_hash].push_back(std::move(r));
  for (size_t i = 0; i < plan.points.size(); ++i) {
    auto it = by_hash.find(plan.points[i].config_hash);
    if (it != by_hash.end()) out[i] = status_of(it->second);
  }
  return out;
}

std::string render_sweep_status(const SweepPlan& plan, const std::vector<PointStatus>& status) {
  std::vector<std::string> experiments;
  for (const auto& e : plan.experiments) experiments.push_back(e.string());
  std::string out = fmt::format("sweep {} ({}): {} points of {}\n", plan.name, plan.file.string(), plan.points.size(), join(experiments, ", "));
  std::map<PointState, size_t> counts;
  for (size_t i = 0; i < plan.points.size(); ++i) {
    ++counts[status[i].state];
    out += fmt::format("  {:>3} {:<9} {:<24} {}\n", i + 1, point_state_name(status[i].state), status[i].run_id.empty() ? "-" : status[i].run_id,
                       plan.points[i].label);
  }
  std::vector<std::string> parts;
  for (auto s : {PointState::Finished, PointState::Running, PointState::Failed, PointState::Killed, PointState::Pending})
    if (counts[s]) parts.push_back(fmt::format("{} {}", counts[s], point_state_name(s)));
  out += fmt::format("{}\n", join(parts, ", "));
  return out;
}

namespace {

// Starts `argv` with stdout and stderr into `log` and ASG_THREADS set (unless the user set it). Returns the pid.
pid_t spawn_point(const std::vector<std::string>& args, const fs::path& log, int64_t threads) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, STDIN_FILENO);
  // Each point in a process group of its own: a Ctrl-C at the terminal reaches the sweep alone, which passes one
  // SIGTERM on. Were the points in the terminal's group too, they would get the SIGINT and then the SIGTERM, and a
  // second signal makes asg exit at once, leaving its run RUNNING.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);
  std::vector<std::string> env;
  bool user_threads = false;
  for (char** e = environ; *e; ++e) {
    env.emplace_back(*e);
    user_threads |= env.back().rfind("ASG_THREADS=", 0) == 0;
  }
  if (!user_threads) env.push_back("ASG_THREADS=" + std::to_string(threads));
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0].c_str(), &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) throw internal_error(fmt::format("cannot start {}: {}", args[0], std::strerror(rc)));
  return pid;
}

}  // namespace

SweepSummary run_sweep(const SweepPlan& plan, const SweepOptions& options) {
  if (options.jobs < 1) throw config_error(fmt::format("--jobs {}: expected 1 or more", options.jobs));
  SweepSummary summary;
  Registry registry(options.run.registry_path);
  registry.collect_dead_runs(30 * 60 * 1000);  // a point whose process died is KILLED, and so retried
  auto status = sweep_point_status(plan, options.run.registry_path);

  NewRun sweep;
  sweep.name = plan.name;
  sweep.experiment_path = plan.file.string();
  sweep.config_hash = plan.hash;
  sweep.config_text = plan.text;
  sweep.role = RunRole::Sweep;
  const GitState git = git_state(plan.file.parent_path());
  sweep.git_commit = git.commit;
  sweep.git_dirty = git.dirty;
  summary.sweep_run_id = registry.create_run(sweep);
  registry.mark_running(summary.sweep_run_id);
  const fs::path log_dir = options.run.runs_dir / "sweeps" / summary.sweep_run_id;
  fs::create_directories(log_dir);

  std::vector<size_t> to_run;
  for (size_t i = 0; i < plan.points.size(); ++i) {
    if (status[i].state == PointState::Finished) ++summary.skipped;
    else if (status[i].state == PointState::Running) ++summary.not_started;  // another process is running it
    else to_run.push_back(i);
  }
  fmt::print("sweep {} (run {}): {} points, {} already FINISHED, {} to run{}, {} at a time\n", plan.name, summary.sweep_run_id,
             plan.points.size(), summary.skipped, to_run.size(),
             summary.not_started ? fmt::format(", {} RUNNING elsewhere", summary.not_started) : "", options.jobs);
  std::fflush(stdout);

  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = std::max<int64_t>(1, cores / options.jobs);
  struct Child {
    size_t point;
    std::chrono::steady_clock::time_point start;
    fs::path log;
  };
  std::map<pid_t, Child> running;
  size_t next = 0;
  bool stop = false, forwarded = false;
  try {
  while ((next < to_run.size() && !stop) || !running.empty()) {
    if (interrupt_requested()) {
      stop = true;
      summary.interrupted = true;
      if (!forwarded) {
        for (const auto& [pid, child] : running) kill(pid, SIGTERM);  // each point ends KILLED, keeping its history
        forwarded = true;
      }
    }
    while (!stop && running.size() < static_cast<size_t>(options.jobs) && next < to_run.size()) {
      const SweepPoint& point = plan.points[to_run[next++]];
      std::vector<std::string> args = {options.executable.string()};
      // A point loads its plugins as the sweep was allowed to (asg --allow-plugin-path sweep ...).
      if (PluginLoadPolicy::process_default().allow_experiment_paths) args.push_back("--allow-plugin-path");
      args.insert(args.end(), {"run", point.experiment.string()});
      for (const auto& o : point.overrides) args.insert(args.end(), {"--set", o});
      args.insert(args.end(), {"--parent-run", summary.sweep_run_id, "--registry", options.run.registry_path.string(), "--runs-dir",
                               options.run.runs_dir.string()});
      const fs::path log = log_dir / fmt::format("point-{:03}.log", point.index + 1);
      const pid_t pid = spawn_point(args, log, threads);
      running[pid] = Child{point.index, std::chrono::steady_clock::now(), log};
      fmt::print("[{}/{}] started  {} (log {})\n", point.index + 1, plan.points.size(), point.label, log.string());
      std::fflush(stdout);
    }
    int wstatus = 0;
    const pid_t pid = waitpid(-1, &wstatus, WNOHANG);
    if (pid <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const Child child = it->second;
    running.erase(it);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - child.start).count();
    const auto now = point_status(registry, plan.points[child.point]);
    const bool ok = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 && now.state == PointState::Finished;
    if (ok) ++summary.finished;
    else if (forwarded) ++summary.stopped;  // ended by the interrupt passed on to it, not by a failure
    else ++summary.failed;
    fmt::print("[{}/{}] {:<8} {} in {:.0f} s{}\n", child.point + 1, plan.points.size(), ok ? "FINISHED" : point_state_name(now.state),
               plan.points[child.point].label, seconds,
               now.run_id.empty() ? fmt::format(" (exit {}; see {})", WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus),
                                                child.log.string())
                                  : fmt::format(" (run {}{})", now.run_id, ok ? "" : "; see " + child.log.string()));
    std::fflush(stdout);
    if (!ok && options.fail_fast && !stop) {
      stop = true;
      fmt::print("--fail-fast: starting no more points\n");
    }
  }
  } catch (const std::exception& e) {
    // The sweep itself failed (a point could not be started, the registry could not be read): its points are stopped
    // as by an interrupt, and the sweep run ends FAILED with the reason, before the error goes on.
    for (const auto& [pid, child] : running) kill(pid, SIGTERM);
    for (const auto& [pid, child] : running) waitpid(pid, nullptr, 0);
    try {
      registry.mark_ended(summary.sweep_run_id, RunStatus::Failed, e.what());
    } catch (...) {
    }
    throw;
  }
  summary.not_started += to_run.size() - next;

  if (summary.interrupted) {
    registry.mark_ended(summary.sweep_run_id, RunStatus::Killed,
                        fmt::format("interrupted ({} point(s) stopped, {} not started); rerun the sweep to finish the missing points",
                                    summary.stopped, summary.not_started));
  } else if (summary.failed > 0 || summary.not_started > 0) {
    registry.mark_ended(summary.sweep_run_id, RunStatus::Failed,
                        fmt::format("{} point(s) failed, {} not run; rerun the sweep to retry them", summary.failed, summary.not_started));
  } else {
    registry.mark_ended(summary.sweep_run_id, RunStatus::Finished);
  }
  return summary;
}

}  // namespace asg
