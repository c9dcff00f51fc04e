#include "asg/reproduce.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <filesystem>

#include "asg/benchmark_definition.h"
#include "asg/error.h"
#include "asg/experiment.h"
#include "asg/plugin.h"
#include "asg/plugin_catalog.h"
#include "asg/names.h"
#include "asg/files.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

// The plugins this machine would load for the experiment, against what the run recorded, slot by slot.
std::vector<std::string> plugin_drift(const Experiment& exp, const std::vector<PluginUse>& recorded) {
  std::vector<std::string> drift;
  std::map<std::string, const PluginSlot*> now;
  for (const auto& slot : exp.slots) now[slot.section] = &slot;
  for (const auto& use : recorded) {
    auto it = now.find(use.slot);
    if (it == now.end()) {
      drift.push_back(fmt::format("slot {}: recorded {} {}, not in the experiment as loaded here", use.slot, use.name, use.version));
      continue;
    }
    const PluginSlot& slot = *it->second;
    const auto& factory = slot.record->factory;
    if (slot.plugin != use.name || factory.version != use.version)
      drift.push_back(fmt::format("slot {}: recorded {} {}, here {} {} ({})", use.slot, use.name, use.version, slot.plugin, factory.version,
                                  slot.record->library_path.string()));
    else if (slot.record->library_sha256 != use.library_sha256)
      drift.push_back(fmt::format("slot {}: {} {} library differs: recorded sha256 {}, here {} ({})", use.slot, use.name, use.version,
                                  use.library_sha256.substr(0, 16), slot.record->library_sha256.substr(0, 16),
                                  slot.record->library_path.string()));
    now.erase(it);
  }
  for (const auto& [section, slot] : now)
    drift.push_back(fmt::format("slot {}: {} here, not recorded with the run", section, slot->plugin));
  return drift;
}

}  // namespace

std::string libtorch_drift(const std::string& host_json, const std::string& linked_version) {
  const auto j = nlohmann::json::parse(host_json, nullptr, false);
  if (!j.is_object() || !j.contains("torch") || !j["torch"].is_string()) return "";
  const std::string recorded = j["torch"].get<std::string>();
  if (recorded == linked_version) return "";
  return fmt::format("LibTorch: the run recorded {}, this build links {} (other kernels: no identical rerun on the CPU)", recorded,
                     linked_version);
}

ReproduceOutcome reproduce_run(const std::string& id_or_prefix, const ReproduceOptions& options) {
  const fs::path& registry_path = options.run.registry_path;
  if (!fs::exists(registry_path))
    throw config_error(fmt::format("{}: no registry here (pass --registry PATH)", registry_path.string()));
  ReproduceOutcome outcome;
  {
    Registry registry(registry_path);
    outcome.original = registry.resolve_run(id_or_prefix);
  }
  const RunRecord& original = outcome.original;
  if (original.role == RunRole::Sweep)
    throw config_error(fmt::format("run {} is a sweep; reproduce one of its points (asg runs show {} lists them)", original.id, original.id));
  if (original.status != RunStatus::Finished)
    throw config_error(fmt::format("run {} is {}; only a FINISHED run has numbers to reproduce", original.id, status_name(original.status)));
  if (original.config_text.empty())
    throw config_error(fmt::format("run {} recorded no config; there is nothing to rerun", original.id));

  // The stored resolved config, as the file the rerun loads (and records as its experiment).
  const fs::path config_file = options.run.runs_dir / "reproductions" / (original.id + ".toml");
  fs::create_directories(config_file.parent_path());
  write_text_file_atomic(config_file, original.config_text);
  PluginCatalog catalog;
  // The stored config's own plugin libraries open only with the digests the run recorded, unless the user asked to
  // rerun with other ones.
  if (!options.allow_plugin_drift) catalog.set_policy(stored_config_policy(Registry(registry_path), original.id));
  const Experiment exp = load_experiment(config_file, {}, catalog);

  std::vector<std::string> drift;
  {
    Registry registry(registry_path);
    drift = plugin_drift(exp, registry.plugins(original.id));
  }
  if (const std::string libtorch = libtorch_drift(original.host_json, ASG_TORCH_VERSION_STRING); !libtorch.empty())
    drift.push_back(libtorch);
  if (exp.config_hash != original.config_hash)
    drift.push_back(fmt::format("config: the stored config hashes to {} here, the run recorded {} (a default of the core or of a "
                                "plugin changed, or a file the config names has other contents)",
                                exp.config_hash.substr(0, 12), original.config_hash.substr(0, 12)));
  if (!drift.empty() && !options.allow_plugin_drift)
    throw config_error(fmt::format("run {} cannot be rerun as it was:\n  {}\nInstall the recorded plugin versions (asg plugins lists "
                                   "what is here), or pass --allow-plugin-drift to rerun anyway and see whether the numbers agree.",
                                   original.id, join(drift, "\n  ")));
  outcome.drift = drift;

  RunOptions run_options = options.run;
  run_options.parent_run_id = original.id;
  run_options.role = RunRole::Reproduction;
  // A CPU run's sums are split across its intra-op threads, so another count gives other last bits, and after a
  // few hundred training steps other numbers. The stored config often says threads = 0 (every core, or the share
  // `asg sweep --jobs` gave the point), so the rerun takes the count the run recorded.
  const RecordedExecution before = recorded_execution(original.host_json);
  run_options.threads = before.threads;
  const RunOutcome rerun = run_experiment(exp, run_options);
  outcome.rerun_id = rerun.run_id;

  // ---- the verdict ----
  Registry registry(registry_path);
  const auto rerun_record = registry.find_run(rerun.run_id);
  const RecordedExecution after = recorded_execution(rerun_record ? rerun_record->host_json : "");
  const bool exact = before.device == "cpu" && after.device == "cpu" && before.deterministic && after.deterministic;
  std::optional<BenchmarkDefinition> definition;
  if (!original.benchmark.empty()) definition = find_benchmark(original.benchmark, benchmark_search_path());
  if (exact) {
    const int64_t threads = after.threads.value_or(0);
    outcome.tolerance_rule = before.threads == after.threads
                                 ? fmt::format("identical values (CPU, deterministic, {} thread{} on both sides)", threads, threads == 1 ? "" : "s")
                                 : fmt::format("identical values (CPU, deterministic on both sides; threads: recorded {}, rerun {}, "
                                               "so the last bits may differ)",
                                               before.threads ? std::to_string(*before.threads) : std::string("not recorded"), threads);
  } else if (definition && (definition->cuda_tolerance || !definition->metric_tolerances.empty())) {
    outcome.tolerance_rule = fmt::format("the [reproduction] tolerances of benchmark {} version {} ({}; devices: recorded {}, rerun {})",
                                         definition->name, definition->version, definition->file.string(),
                                         before.device.empty() ? "not recorded" : before.device, after.device);
  } else {
    outcome.tolerance_rule = fmt::format("identical values: not both CPU-deterministic (recorded {}, rerun {}) and benchmark '{}' declares "
                                         "no [reproduction] tolerance",
                                         before.device.empty() ? "not recorded" : before.device, after.device, original.benchmark);
  }
  outcome.verdicts = judge_reproduction(registry.results(original.id), rerun.results, exact, definition ? &*definition : nullptr);
  outcome.agrees = std::all_of(outcome.verdicts.begin(), outcome.verdicts.end(), [](const MetricVerdict& v) { return v.pass; });
  return outcome;
}

std::vector<MetricVerdict> judge_reproduction(const std::vector<ResultValue>& recorded, const std::vector<ResultValue>& rerun, bool exact,
                                              const BenchmarkDefinition* definition) {
  std::map<std::string, double> rerun_values;
  for (const auto& v : rerun) rerun_values[v.key] = v.value;
  std::vector<MetricVerdict> verdicts;
  for (const auto& r : recorded) {
    MetricVerdict v;
    v.key = r.key;
    v.recorded = r.value;
    auto it = rerun_values.find(r.key);
    v.rerun = it == rerun_values.end() ? std::nan("") : it->second;
    if (!exact && definition) {
      auto own = definition->metric_tolerances.find(r.key);
      const auto t = own != definition->metric_tolerances.end() ? own->second : definition->cuda_tolerance.value_or(BenchmarkDefinition::Tolerance{});
      v.abs_tolerance = t.abs;
      v.rel_tolerance = t.rel;
    }
    // A metric the rerun did not record fails; NaN (a metric that could not be computed) agrees only with NaN.
    if (it == rerun_values.end()) v.pass = false;
    else if (std::isnan(v.recorded) || std::isnan(v.rerun)) v.pass = std::isnan(v.recorded) && std::isnan(v.rerun);
    else if (v.abs_tolerance == 0 && v.rel_tolerance == 0) v.pass = v.recorded == v.rerun;
    else v.pass = std::fabs(v.rerun - v.recorded) <= v.abs_tolerance + v.rel_tolerance * std::fabs(v.recorded);
    verdicts.push_back(v);
  }
  return verdicts;
}

std::string render_verdict(const ReproduceOutcome& outcome) {
  std::string out = fmt::format("## Reproduction of {} ({}) as {}\n\nrule: {}\n", outcome.original.id, outcome.original.name,
                                outcome.rerun_id, outcome.tolerance_rule);
  for (const auto& d : outcome.drift) out += fmt::format("allowed drift: {}\n", d);
  out += "\n| metric | recorded | rerun | |Δ| | tolerance | verdict |\n|---|---:|---:|---:|---|---|\n";
  for (const auto& v : outcome.verdicts) {
    const std::string tolerance = v.abs_tolerance == 0 && v.rel_tolerance == 0
                                      ? "identical"
                                      : fmt::format("{:g} + {:g}·|recorded| = {:.6g}", v.abs_tolerance, v.rel_tolerance,
                                                    v.abs_tolerance + v.rel_tolerance * std::fabs(v.recorded));
    const std::string delta = std::isfinite(v.recorded) && std::isfinite(v.rerun) ? fmt::format("{:.6g}", std::fabs(v.rerun - v.recorded)) : "n/a";
    out += fmt::format("| {} | {:.10g} | {} | {} | {} | {} |\n", v.key, v.recorded, std::isnan(v.rerun) ? "missing" : fmt::format("{:.10g}", v.rerun),
                       delta, tolerance, v.pass ? "pass" : "FAIL");
  }
  size_t failed = 0;
  for (const auto& v : outcome.verdicts) failed += v.pass ? 0 : 1;
  out += outcome.agrees ? fmt::format("\nREPRODUCED: all {} metrics within tolerance\n", outcome.verdicts.size())
                        : fmt::format("\nNOT REPRODUCED: {} of {} metrics outside tolerance\n", failed, outcome.verdicts.size());
  return out;
}

}  // namespace asg
