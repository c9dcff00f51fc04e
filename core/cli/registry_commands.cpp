#include "registry_commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <memory>
#include <set>

#include "asg/error.h"
#include "asg/leaderboard.h"
#include "asg/registry.h"
#include "asg/run_query.h"
#include "asg/server.h"
#include "asg/interrupt.h"

namespace fs = std::filesystem;

namespace asg::cli {

std::string format_time(int64_t ms) {
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
}

namespace {

// Opens an existing registry; reading commands never create one.
std::unique_ptr<Registry> open_existing(const std::string& path) {
  if (!fs::exists(path))
    throw config_error(fmt::format("{}: no registry here yet (run an experiment first, or pass --registry PATH)", path));
  return std::make_unique<Registry>(path);
}

std::set<std::string> benchmarks_with_finished_runs(const Registry& registry) {
  std::set<std::string> names;
  for (const auto& r : registry.list_runs("", RunStatus::Finished))
    if (!r.benchmark.empty() && r.role == RunRole::Run) names.insert(r.benchmark);
  for (const auto& set : registry.result_sets())
    if (set.status == RunStatus::Finished) names.insert(set.benchmark);
  return names;
}

int cmd_leaderboard(const std::string& registry_path, LeaderboardOptions options, const std::string& format) {
  auto registry = open_existing(registry_path);
  const LeaderboardFormat kind = parse_leaderboard_format(format);
  if (!options.benchmark.empty()) {
    fmt::print("{}", render_leaderboard(*registry, options, kind));
    return 0;
  }
  const auto names = benchmarks_with_finished_runs(*registry);
  if (names.empty()) throw config_error(fmt::format("{}: no finished benchmark runs yet", registry_path));
  if (kind == LeaderboardFormat::Html) {
    // A page per benchmark: with several, the one to write must be named.
    if (names.size() > 1)
      throw config_error(fmt::format("--format html writes one page: add --benchmark NAME (benchmarks here: {})", fmt::join(names, ", ")));
    options.benchmark = *names.begin();
    fmt::print("{}", render_leaderboard(*registry, options, kind));
    return 0;
  }
  if (kind == LeaderboardFormat::Json) {
    // One JSON document: an array of every benchmark's leaderboard.
    nlohmann::json all = nlohmann::json::array();
    for (const auto& n : names) {
      options.benchmark = n;
      all.push_back(nlohmann::json::parse(render_leaderboard(*registry, options, kind)));
    }
    fmt::print("{}\n", all.dump(2));
    return 0;
  }
  bool first = true;
  for (const auto& n : names) {
    if (!first) fmt::print("\n");
    first = false;
    options.benchmark = n;
    fmt::print("{}", render_leaderboard(*registry, options, kind));
  }
  return 0;
}

int cmd_summary(const std::string& registry_path, const std::string& benchmark, const std::vector<std::string>& names,
                const std::string& format) {
  auto registry = open_existing(registry_path);
  fmt::print("{}", render_group_summary(*registry, benchmark, names, parse_leaderboard_format(format)));
  return 0;
}

int cmd_compare(const std::string& registry_path, const std::vector<std::string>& ids, const std::string& format) {
  auto registry = open_existing(registry_path);
  std::vector<RunRecord> runs;
  for (const auto& id : ids) runs.push_back(registry->resolve_run(id));
  fmt::print("{}", render_comparison(*registry, runs, parse_leaderboard_format(format)));
  return 0;
}

struct ListFlags {
  std::string benchmark, status;
  std::vector<std::string> where;
  bool deleted = false;
  size_t limit = 50;
};

// Runs that match the flags, newest first; at most `limit` (0 = all). Read without their config text, which only a
// --where on config keys looks into (and then reads).
std::vector<RunRecord> select_runs(const Registry& registry, const ListFlags& flags, size_t limit) {
  RunQuery query;
  query.benchmark = flags.benchmark;
  if (!flags.status.empty()) query.status = parse_status(flags.status);
  query.include_deleted = flags.deleted;
  query.with_large_texts = false;
  if (flags.where.empty()) query.limit = limit;
  auto runs = registry.list_runs(query);
  RunSelector selector(registry, parse_run_filters(flags.where));
  if (!selector.empty()) {
    selector.check_keys(runs);
    std::erase_if(runs, [&](const RunRecord& r) { return !selector.matches(r); });
    if (limit && runs.size() > limit) runs.resize(limit);
  }
  return runs;
}

int cmd_runs_list(const std::string& registry_path, const ListFlags& flags) {
  auto registry = open_existing(registry_path);
  // One more than shown, to know whether there are more.
  const auto runs = select_runs(*registry, flags, flags.limit == 0 ? 0 : flags.limit + 1);
  fmt::print("{:<24} {:<9} {:<20} {:<24} {:<12} {}\n", "RUN", "STATUS", "STARTED (UTC)", "NAME", "CONFIG", "ERROR");
  const size_t shown = flags.limit == 0 ? runs.size() : std::min(runs.size(), flags.limit);
  for (size_t i = 0; i < shown; ++i) {
    const RunRecord& r = runs[i];
    std::string name = r.name;
    if (r.role != RunRole::Run) name += fmt::format(" [{}]", run_role_name(r.role));
    if (r.deleted_ms) name += " [deleted]";
    fmt::print("{:<24} {:<9} {:<20} {:<24} {:<12} {}\n", r.id, status_name(r.status), format_time(r.created_ms), name,
               r.config_hash.substr(0, 12), r.error.substr(0, 80));
    // Result sets asg eval added to the run, newest first, under it.
    for (const auto& set : registry->result_sets(r.id))
      fmt::print("  eval {:<17} {:<9} {:<20} benchmark {} protocol {} {}\n", set.id, status_name(set.status), format_time(set.created_ms),
                 set.benchmark, set.protocol_hash.substr(0, 12), set.error.substr(0, 80));
  }
  if (shown < runs.size()) fmt::print("(more runs; --limit N shows N, --limit 0 all)\n");
  return 0;
}

int cmd_runs_show(const std::string& registry_path, const std::string& id, bool json) {
  auto registry = open_existing(registry_path);
  const RunRecord r = registry->resolve_run(id);
  const auto plugins = registry->plugins(r.id);
  const auto results = registry->results(r.id);
  const auto artifacts = registry->artifacts(r.id);
  const auto history = registry->metric_history(r.id);
  RunQuery children_query;
  children_query.parent_run_id = r.id;
  children_query.include_deleted = true;
  const auto children = registry->list_runs(children_query);
  // Per history key: points and the last value.
  std::map<std::string, std::pair<size_t, MetricPoint>> series;
  for (const auto& p : history) {
    auto& s = series[p.key];
    ++s.first;
    s.second = p;
  }
  if (json) {
    nlohmann::json j = {{"id", r.id}, {"name", r.name}, {"status", status_name(r.status)}, {"role", run_role_name(r.role)},
                        {"benchmark", r.benchmark}, {"experiment", r.experiment_path}, {"seed", r.seed},
                        {"config_hash", r.config_hash}, {"method_hash", r.method_hash}, {"protocol_hash", r.protocol_hash},
                        {"commit", r.git_commit}, {"dirty", r.git_dirty}, {"run_dir", r.run_dir}, {"attempt", r.attempt},
                        {"created_ms", r.created_ms}, {"error", r.error}, {"config", r.config_text}};
    j["parent_run_id"] = r.parent_run_id ? nlohmann::json(*r.parent_run_id) : nlohmann::json();
    j["deleted_ms"] = r.deleted_ms ? nlohmann::json(*r.deleted_ms) : nlohmann::json();
    j["host"] = nlohmann::json::parse(r.host_json, nullptr, false);
    for (const auto& p : plugins)
      j["plugins"].push_back({{"slot", p.slot}, {"kind", p.kind}, {"name", p.name}, {"version", p.version}, {"library", p.library},
                              {"library_sha256", p.library_sha256}});
    j["results"] = nlohmann::json::object();
    for (const auto& v : results) j["results"][v.key] = std::isfinite(v.value) ? nlohmann::json(v.value) : nlohmann::json();
    for (const auto& a : artifacts) j["artifacts"].push_back({{"path", a.path}, {"sha256", a.sha256}, {"bytes", a.bytes}});
    for (const auto& c : children) j["children"].push_back({{"id", c.id}, {"role", run_role_name(c.role)}, {"status", status_name(c.status)}});
    for (const auto& [key, s] : series) j["history"][key] = {{"points", s.first}, {"last_step", s.second.step}, {"last_value", s.second.value}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("run {}  {}{}\n", r.id, status_name(r.status), r.deleted_ms ? fmt::format(" (deleted {})", format_time(*r.deleted_ms)) : "");
  fmt::print("  name:       {}\n  role:       {}{}\n", r.name, run_role_name(r.role),
             r.parent_run_id ? fmt::format(" (parent {}, attempt {})", *r.parent_run_id, r.attempt) : "");
  fmt::print("  experiment: {}\n  benchmark:  {}\n  seed:       {}\n", r.experiment_path, r.benchmark.empty() ? "(none)" : r.benchmark, r.seed);
  fmt::print("  created:    {}{}{}\n", format_time(r.created_ms), r.started_ms ? "  started " + format_time(*r.started_ms) : "",
             r.ended_ms ? "  ended " + format_time(*r.ended_ms) : "");
  fmt::print("  commit:     {}{}\n  config:     {}\n  method:     {}\n  protocol:   {}\n  folder:     {}\n",
             r.git_commit.empty() ? "unknown" : r.git_commit, r.git_dirty ? " (dirty)" : "", r.config_hash, r.method_hash, r.protocol_hash,
             r.run_dir.empty() ? fmt::format("<runs dir>/{}", r.id) : r.run_dir);
  if (!r.error.empty()) fmt::print("  error:      {}\n", r.error);
  const auto host = nlohmann::json::parse(r.host_json, nullptr, false);
  if (host.is_object() && !host.empty()) fmt::print("  host:       {}\n", host.dump());
  if (!plugins.empty()) {
    fmt::print("\nplugins:\n");
    for (const auto& p : plugins)
      fmt::print("  {:<14} {:<22} {:<8} sha256 {}  {}\n", p.slot, p.name, p.version, p.library_sha256.substr(0, 16), p.library);
  }
  if (!results.empty()) {
    fmt::print("\nresults:\n");
    for (const auto& v : results) fmt::print("  {:<28} {:.6g} ({} is better)\n", v.key, v.value, v.higher_is_better ? "higher" : "lower");
  }
  for (const auto& set : registry->result_sets(r.id)) {
    fmt::print("\neval {} ({}, benchmark {}, protocol {}):\n", set.id, status_name(set.status), set.benchmark, set.protocol_hash.substr(0, 12));
    for (const auto& v : registry->result_set_values(set.id)) fmt::print("  {:<28} {:.6g}\n", v.key, v.value);
  }
  if (!series.empty()) {
    fmt::print("\nhistory:\n");
    for (const auto& [key, s] : series)
      fmt::print("  {:<28} {} points, last {:.6g} at step {}\n", key, s.first, s.second.value, s.second.step);
  }
  if (!children.empty()) {
    fmt::print("\nchildren:\n");
    for (const auto& c : children) fmt::print("  {} {:<9} {} {}\n", c.id, status_name(c.status), run_role_name(c.role), c.name);
  }
  if (!artifacts.empty()) fmt::print("\n{} artifacts (asg runs show {} --json lists them)\n", artifacts.size(), r.id);
  fmt::print("\nconfig:\n{}", r.config_text);
  return 0;
}

int cmd_runs_rm(const std::string& registry_path, const std::string& runs_dir, const std::vector<std::string>& ids, bool purge) {
  auto registry = open_existing(registry_path);
  // Every id is resolved before anything is changed: one bad id removes nothing.
  std::vector<RunRecord> runs;
  for (const auto& id : ids) runs.push_back(registry->resolve_run(id));
  for (const auto& r : runs) {
    registry->mark_deleted(r.id);
    std::string purged;
    if (purge) {
      // A run's folder is <runs dir>/<run id> (asg run --runs-dir); runs that recorded another place name it.
      const fs::path dir = r.run_dir.empty() ? fs::path(runs_dir) / r.id : fs::path(r.run_dir);
      // Only a folder named after the run: a run_dir that was edited to point elsewhere is never emptied.
      if (dir.filename() == r.id && fs::is_directory(dir)) {
        const auto removed = fs::remove_all(dir);
        purged = fmt::format("; removed {} ({} files and folders)", dir.string(), removed);
      } else if (fs::exists(dir)) {
        purged = fmt::format("; kept {} (not a folder named after the run)", dir.string());
      } else {
        purged = "; its folder was already gone";
      }
    }
    fmt::print("removed {} ({}){}\n", r.id, r.name, purged);
  }
  if (!purge) fmt::print("the runs' rows and folders are kept; asg runs list --deleted shows them\n");
  return 0;
}

int cmd_runs_export(const std::string& registry_path, const std::vector<std::string>& ids, const ListFlags& flags, bool all,
                    const std::string& out) {
  auto registry = open_existing(registry_path);
  std::vector<std::string> chosen;
  for (const auto& id : ids) chosen.push_back(registry->resolve_run(id).id);
  if (all || !flags.where.empty() || !flags.benchmark.empty() || !flags.status.empty())
    for (const auto& r : select_runs(*registry, flags, 0)) chosen.push_back(r.id);
  std::vector<std::string> unique;
  for (const auto& id : chosen)
    if (std::find(unique.begin(), unique.end(), id) == unique.end()) unique.push_back(id);
  if (unique.empty()) throw config_error("asg runs export: no runs chosen (give run ids, --all, or --benchmark/--status/--where)");
  const auto written = registry->export_runs(unique, out);
  const size_t parents = written.size() - unique.size();
  fmt::print("exported {} run{}{} to {} (asg runs import {} on the other machine)\n", unique.size(), unique.size() == 1 ? "" : "s",
             parents ? fmt::format(" and {} parent run{} they name (sweeps, reproduced or resumed runs)", parents, parents == 1 ? "" : "s") : "",
             out, out);
  return 0;
}

int cmd_runs_import(const std::string& registry_path, const std::string& file) {
  Registry registry(registry_path);
  const ImportReport report = registry.import_runs(file);
  for (const auto& id : report.imported) fmt::print("imported {}\n", id);
  for (const auto& id : report.differing)
    fmt::print("kept {}: this registry has it with other contents (asg runs show {} here and there)\n", id, id);
  fmt::print("{}: {} imported, {} already here, {} differing (kept as they are here)\n", file, report.imported.size(),
             report.already_present.size(), report.differing.size());
  return 0;
}

int cmd_runs_gc(const std::string& registry_path, double stale_after_min) {
  auto registry = open_existing(registry_path);
  const auto collected = registry->collect_dead_runs(static_cast<int64_t>(stale_after_min * 60000));
  if (collected.empty())
    fmt::print("runs gc: {}: every RUNNING run is alive ({} running)\n", registry_path, registry->list_runs("", RunStatus::Running).size());
  for (const auto& c : collected) fmt::print("runs gc: marked KILLED {} ({}): {}\n", c.id, c.name, c.reason);
  return 0;
}

int cmd_serve(const ServeOptions& options) {
  install_interrupt_handlers();
  std::atomic<bool> stop{false};
  std::thread watch([&] {
    while (!stop.load()) {
      if (interrupt_requested()) stop = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  try {
    serve_registry(options, [&](int port) {
      fmt::print("asg serve: {} (read-only) at http://{}:{}/ ; Ctrl-C stops\n", options.registry_path.string(), options.bind, port);
      std::fflush(stdout);
    }, stop);
  } catch (...) {
    stop = true;
    watch.join();
    throw;
  }
  stop = true;
  watch.join();
  return 0;
}

const std::vector<std::string> kFormats = {"md", "csv", "json", "latex", "html"};

}  // namespace

void add_registry_commands(CLI::App& app, Action& action, std::string& registry_path, std::string& runs_dir) {
  auto add_registry = [&](CLI::App* cmd) { cmd->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str(); };

  {
    auto* cmd = app.add_subcommand("leaderboard", "print a benchmark's leaderboard: runs that differ only by seed as one row (mean ± std)");
    auto options = std::make_shared<LeaderboardOptions>();
    auto format = std::make_shared<std::string>("md");
    cmd->add_option("--benchmark", options->benchmark, "benchmark name (default: every benchmark)");
    cmd->add_option("--format", *format, "md, csv, json, latex or html (one self-contained page)")->check(CLI::IsMember(kFormats))
        ->capture_default_str();
    cmd->add_flag("--runs", options->individual_runs, "one row per run instead of one per set of seeds");
    cmd->add_option("--runs-dir", runs_dir, "html: where the runs' folders (their samples) are")->capture_default_str();
    cmd->add_option("--group-by", options->group_by, "one row per value of this config key (e.g. temporal.plugin): an ablation view");
    cmd->add_option("--where", options->where, "only runs with KEY=VALUE or KEY!=VALUE (config key, plugin, status, name, seed); repeatable")
        ->allow_extra_args(false);
    add_registry(cmd);
    cmd->callback([&, cmd, options, format] {
      action = [&, options, format] {
        options->runs_dir = runs_dir;
        return cmd_leaderboard(registry_path, *options, *format);
      };
    });
  }
  {
    auto* cmd = app.add_subcommand("summary", "mean ± std of every metric over the runs of each name (seeds of an ablation)");
    auto benchmark = std::make_shared<std::string>();
    auto names = std::make_shared<std::vector<std::string>>();
    auto format = std::make_shared<std::string>("md");
    cmd->add_option("--benchmark", *benchmark, "benchmark name")->required();
    cmd->add_option("--names", *names, "run names to include, in this order (default: all, best first)")->delimiter(',');
    cmd->add_option("--format", *format, "md or csv")->check(CLI::IsMember({"md", "csv"}))->capture_default_str();
    add_registry(cmd);
    cmd->callback([&, benchmark, names, format] { action = [&, benchmark, names, format] { return cmd_summary(registry_path, *benchmark, *names, *format); }; });
  }
  {
    auto* cmd = app.add_subcommand("compare", "what differs between runs: config keys, plugins, host and libraries, results (Δ against the first)");
    auto ids = std::make_shared<std::vector<std::string>>();
    auto format = std::make_shared<std::string>("md");
    cmd->add_option("runs", *ids, "two run ids or more (any unambiguous start of one)")->required()->expected(2, 64);
    cmd->add_option("--format", *format, "md or json")->check(CLI::IsMember({"md", "json"}))->capture_default_str();
    add_registry(cmd);
    cmd->callback([&, ids, format] { action = [&, ids, format] { return cmd_compare(registry_path, *ids, *format); }; });
  }

  {
    auto* cmd = app.add_subcommand("serve", "a local, read-only web view of the registry: leaderboards, run pages with live loss "
                                            "curves, compare");
    auto options = std::make_shared<ServeOptions>();
    cmd->add_option("--port", options->port, "TCP port (0: any free one)")->check(CLI::Range(0, 65535))->capture_default_str();
    cmd->add_option("--bind", options->bind, "address to listen on (loopback unless told otherwise)")->capture_default_str();
    add_registry(cmd);
    cmd->add_option("--runs-dir", runs_dir, "where the runs' folders (their samples) are")->capture_default_str();
    cmd->callback([&, options] {
      action = [&, options] {
        options->registry_path = registry_path;
        options->runs_dir = runs_dir;
        return cmd_serve(*options);
      };
    });
  }

  auto* runs = app.add_subcommand("runs", "list recorded runs (newest first); show, rm, gc, export, import");
  auto list_flags = std::make_shared<ListFlags>();
  auto add_list_flags = [&](CLI::App* cmd, ListFlags& flags) {
    cmd->add_option("--benchmark", flags.benchmark, "only runs of this benchmark");
    cmd->add_option("--status", flags.status, "only runs in this status")->check(CLI::IsMember({"QUEUED", "RUNNING", "FINISHED", "FAILED", "KILLED"}));
    cmd->add_option("--where", flags.where, "only runs with KEY=VALUE or KEY!=VALUE (config key, plugin, status, name, seed); repeatable")
        ->allow_extra_args(false);
  };
  add_list_flags(runs, *list_flags);
  runs->add_flag("--deleted", list_flags->deleted, "also list runs removed with asg runs rm");
  runs->add_option("--limit", list_flags->limit, "print at most this many (0: all)")->capture_default_str();
  add_registry(runs);
  runs->callback([&, runs, list_flags] {
    if (runs->get_subcommands().empty()) action = [&, list_flags] { return cmd_runs_list(registry_path, *list_flags); };
  });
  {
    auto* cmd = runs->add_subcommand("list", "list recorded runs, newest first");
    auto flags = std::make_shared<ListFlags>();
    add_list_flags(cmd, *flags);
    cmd->add_flag("--deleted", flags->deleted, "also list runs removed with asg runs rm");
    cmd->add_option("--limit", flags->limit, "print at most this many (0: all)")->capture_default_str();
    add_registry(cmd);
    cmd->callback([&, flags] { action = [&, flags] { return cmd_runs_list(registry_path, *flags); }; });
  }
  {
    auto* cmd = runs->add_subcommand("show", "everything recorded about one run");
    auto id = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    cmd->add_option("run", *id, "run id (any unambiguous start of one)")->required();
    cmd->add_flag("--json", *json, "print JSON");
    add_registry(cmd);
    cmd->callback([&, id, json] { action = [&, id, json] { return cmd_runs_show(registry_path, *id, *json); }; });
  }
  {
    auto* cmd = runs->add_subcommand("rm", "hide runs from listings and leaderboards (rows kept); --purge also deletes their folders");
    auto ids = std::make_shared<std::vector<std::string>>();
    auto purge = std::make_shared<bool>(false);
    cmd->add_option("runs", *ids, "run ids (any unambiguous start of one)")->required();
    cmd->add_flag("--purge", *purge, "also delete each run's folder (samples, checkpoints, logs)");
    add_registry(cmd);
    cmd->add_option("--runs-dir", runs_dir, "directory the runs' folders are in")->capture_default_str();
    cmd->callback([&, ids, purge] { action = [&, ids, purge] { return cmd_runs_rm(registry_path, runs_dir, *ids, *purge); }; });
  }
  {
    auto* cmd = runs->add_subcommand("gc", "mark KILLED the RUNNING runs whose process is gone");
    auto stale = std::make_shared<double>(30.0);
    cmd->add_option("--stale-after-min", *stale,
                    "runs of other hosts (and rows that recorded no process) count as dead after this long without a heartbeat")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    add_registry(cmd);
    cmd->callback([&, stale] { action = [&, stale] { return cmd_runs_gc(registry_path, *stale); }; });
  }
  {
    auto* cmd = runs->add_subcommand("export", "write runs, whole, to a new registry file that asg runs import merges elsewhere");
    auto ids = std::make_shared<std::vector<std::string>>();
    auto flags = std::make_shared<ListFlags>();
    auto all = std::make_shared<bool>(false);
    auto out = std::make_shared<std::string>();
    cmd->add_option("runs", *ids, "run ids (any unambiguous start of one)");
    add_list_flags(cmd, *flags);
    cmd->add_flag("--all", *all, "every run (deleted ones left out)");
    cmd->add_option("--out", *out, "the file to write (must not exist)")->required();
    add_registry(cmd);
    cmd->callback([&, ids, flags, all, out] { action = [&, ids, flags, all, out] { return cmd_runs_export(registry_path, *ids, *flags, *all, *out); }; });
  }
  {
    auto* cmd = runs->add_subcommand("import", "copy in the runs of an export (or of another registry) that this registry lacks");
    auto file = std::make_shared<std::string>();
    cmd->add_option("file", *file, "an asg runs export file, or a registry file")->required();
    add_registry(cmd);
    cmd->callback([&, file] { action = [&, file] { return cmd_runs_import(registry_path, *file); }; });
  }
}

}  // namespace asg::cli
