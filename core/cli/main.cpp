// asg: the ASG Lab command line.
//
//   asg run FILE [--set k=v]... [--dry-run] [--registry PATH] [--runs-dir DIR]
//   asg validate FILE... [--set k=v]... [--build]
//   asg plugins [list] | asg plugins show NAME
//   asg benchmarks [list] | asg benchmarks show NAME
//   asg leaderboard [--benchmark NAME] [--format md|csv|json|latex] [--runs | --group-by KEY] [--where K=V]...
//   asg summary --benchmark NAME [--names a,b,...] [--format md|csv]
//   asg compare RUN RUN... [--format md|json]
//   asg runs [list] [--benchmark NAME] [--status S] [--where K=V]... [--deleted] [--limit N]
//   asg runs show RUN [--json] | asg runs rm RUN... [--purge] | asg runs gc [--stale-after-min N]
//   asg runs export [RUN...] [--all | --benchmark/--status/--where] --out FILE | asg runs import FILE
//   asg reproduce RUN [--allow-plugin-drift]
//   asg sweep FILE [--jobs N] [--fail-fast] | asg sweep status FILE
//   (every registry command takes --registry PATH; RUN is a run id or any unambiguous start of one)
//   asg resume RUN_ID [--registry PATH] [--runs-dir DIR]
//   asg eval RUN_ID --benchmark NAME [--set k=v]... [--registry PATH] [--runs-dir DIR]
//   asg data inspect FILE... [--json] [--max-canvas-pixels N] [--max-frames N] [--max-decoded-bytes N]
//   asg data export-frames FILE DIR
//   asg data synth EXPERIMENT OUT_DIR [--set k=v]... [--format webp|gif]
//   asg data index|stats|check SOURCE [manifest options] ...
//   asg data pack SOURCE OUT_DIR [--samples-per-shard N] [manifest options]
//
// Exit codes: 0 ok; 1 a run, the registry or a media file failed (or a sweep point did); 2 bad input (flags,
// config, plugins); 3 asg reproduce: the rerun's numbers are outside the benchmark's tolerance; 130 interrupted.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <filesystem>
#include <set>

#include "asg/benchmark_definition.h"
#include "asg/data_tools.h"
#include "asg/error.h"
#include "asg/experiment.h"
#include "asg/interrupt.h"
#include "asg/media/sticker_file.h"
#include "asg/plugin_catalog.h"
#include "asg/registry.h"
#include "asg/runner.h"
#include "asg/util.h"
#include "frechet_files.h"
#include "registry_commands.h"
#include "weights_commands.h"
#include "workflow_commands.h"

namespace fs = std::filesystem;

namespace {

asg::RunOptions run_options(const std::string& registry_path, const std::string& runs_dir) {
  asg::RunOptions options;
  options.registry_path = registry_path;
  options.runs_dir = runs_dir;
  return options;
}

int cmd_plugins(const std::string& show, const std::vector<std::string>& extra_path) {
  auto catalog = asg::PluginCatalog::discover(std::vector<fs::path>(extra_path.begin(), extra_path.end()));
  if (!show.empty()) {
    const asg::PluginRecord* p = catalog.find_any_kind(show);
    if (!p) {
      std::vector<std::string> all;
      for (const auto& r : catalog.plugins()) all.push_back(r->factory.name);
      throw asg::config_error(fmt::format("no plugin named '{}' (known: {}).{}", show, asg::join(all, ", "),
                                          asg::did_you_mean(show, all)));
    }
    for (const auto& plugin : catalog.plugins()) {
      const asg::PluginRecord& r = *plugin;
      if (r.factory.name != show) continue;
      fmt::print("{} {} {}\n  {}\n  library: {}\n  sha256:  {}\n  built against: ASG Lab {}\n", r.factory.kind,
                 r.factory.name, r.factory.version, r.factory.summary, r.library_path.string(), r.library_sha256,
                 r.sdk_version.empty() ? "(not recorded: plugin API 3.0)" : r.sdk_version);
      const asg::Requirements& needs = r.factory.requirements;
      if (!needs.label_keys.empty()) fmt::print("  requires dataset label keys: {}\n", asg::join(needs.label_keys, ", "));
      if (!needs.vocabulary.name.empty()) fmt::print("  requires dataset vocabulary: {}\n", needs.vocabulary.text());
      if (needs.min_frames > 0) fmt::print("  requires clips of at least {} frames\n", needs.min_frames);
      fmt::print("\n");
      if (r.factory.params.empty()) {
        fmt::print("  (no parameters)\n\n");
        continue;
      }
      fmt::print("| key | type | default | valid | description |\n|---|---|---|---|---|\n");
      for (const auto& s : r.factory.params) {
        fmt::print("| {} | {} | {} | {} | {} |\n", s.key, asg::param_type_name(s.type),
                   s.required ? "(required)" : asg::format_param_value(s.default_value), s.constraint_text(), s.doc);
      }
      fmt::print("\n");
    }
    return 0;
  }
  fmt::print("{:<13} {:<22} {:<8} {:<16} {}\n", "KIND", "NAME", "VERSION", "SHA256", "LIBRARY");
  // Known kinds in their order, then any kind this asg has no slot for (a plugin built for a newer one).
  std::vector<std::string> kinds = asg::known_plugin_kinds();
  for (const auto& r : catalog.plugins())
    if (std::find(kinds.begin(), kinds.end(), r->factory.kind) == kinds.end()) kinds.push_back(r->factory.kind);
  for (const auto& kind : kinds) {
    for (const auto& r : catalog.plugins()) {
      if (r->factory.kind != kind) continue;
      fmt::print("{:<13} {:<22} {:<8} {:<16} {}\n", kind, r->factory.name, r->factory.version,
                 r->library_sha256.substr(0, 16), r->library_path.string());
    }
  }
  fmt::print("\nsearched: {}\n", [&] {
    std::vector<std::string> s;
    for (const auto& p : catalog.searched()) s.push_back(p.string());
    return asg::join(s, ":");
  }());
  return 0;
}

int cmd_benchmarks(const std::string& show) {
  const auto search_path = asg::benchmark_search_path();
  const auto definitions = asg::discover_benchmarks(search_path);
  std::vector<std::string> searched;
  for (const auto& p : search_path) searched.push_back(p.string());
  if (show.empty()) {
    fmt::print("{:<30} {:<8} {:<20} {}\n", "NAME", "VERSION", "RANK BY", "FILE");
    for (const auto& d : definitions) fmt::print("{:<30} {:<8} {:<20} {}\n", d.name, d.version, d.rank_by, d.file.string());
    fmt::print("\nsearched: {}\n", searched.empty() ? std::string("(nothing: set ASG_BENCHMARK_PATH)") : asg::join(searched, ":"));
    return 0;
  }
  for (const auto& d : definitions) {
    if (d.name != show) continue;
    std::vector<std::string> seeds;
    for (int64_t s : d.seeds) seeds.push_back(std::to_string(s));
    fmt::print("benchmark {} version {}\n  {}\n  file: {}\n  rank by: {}\n  seeds: {}\n", d.name, d.version, d.description,
               d.file.string(), d.rank_by.empty() ? "(the first metric)" : d.rank_by, seeds.empty() ? "any" : asg::join(seeds, ", "));
    if (!d.tasks.empty()) fmt::print("  tasks: {} (each its own protocol)\n", asg::join(d.tasks, ", "));
    fmt::print("\n");
    fmt::print("| key | value | source |\n|---|---|---|\n");
    for (const auto& f : d.fields) {
      auto why = d.assumptions.find(f.key);
      fmt::print("| {} | {} | {} |\n", f.key, f.value, why == d.assumptions.end() ? "" : "assumption: " + why->second);
    }
    for (const auto& [key, why] : d.assumptions)
      if (key.rfind("benchmark.", 0) == 0) fmt::print("| {} | | assumption: {} |\n", key, why);
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& d : definitions) names.push_back(d.name);
  throw asg::config_error(fmt::format("no benchmark definition named '{}' (known: {}; searched {}).{}", show,
                                      names.empty() ? "none" : asg::join(names, ", "),
                                      searched.empty() ? "nothing" : asg::join(searched, ":"), asg::did_you_mean(show, names)));
}

// "# benchmark NAME version V: held to its definition FILE", or says that the benchmark is ad hoc.
std::string benchmark_line(const asg::Experiment& exp) {
  const std::string& name = exp.benchmark.str("name");
  if (name.empty()) return "# on no benchmark\n";
  if (!exp.benchmark_definition)
    return fmt::format("# benchmark {}: ad hoc (no definition of that name; asg benchmarks lists them)\n", name);
  return fmt::format("# benchmark {} version {}: held to its definition {}\n", name, exp.benchmark_definition->version,
                     exp.benchmark_definition->file.string());
}

int cmd_validate(const std::vector<std::string>& files, const std::vector<std::string>& overrides, bool build) {
  int failures = 0;
  for (const auto& f : files) {
    try {
      asg::PluginCatalog catalog;
      asg::Experiment exp = asg::load_experiment(f, overrides, catalog);
      const std::string built = build ? "# " + asg::check_build(exp) + "\n" : "";
      fmt::print("# {}: valid; config hash {}\n# method {} protocol {}\n{}{}{}\n", f, exp.config_hash, exp.method_hash,
                 exp.protocol_hash, benchmark_line(exp), built, exp.resolved_toml);
    } catch (const asg::Error& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 2;
}

int cmd_run(const std::string& file, const std::vector<std::string>& overrides, bool dry_run,
            const asg::RunOptions& options) {
  asg::PluginCatalog catalog;
  asg::Experiment exp = asg::load_experiment(file, overrides, catalog);
  if (dry_run) {
    fmt::print("# {}: dry run; config hash {}\n# method {} protocol {}\n{}{}\n", file, exp.config_hash, exp.method_hash,
               exp.protocol_hash, benchmark_line(exp), exp.resolved_toml);
    return 0;
  }
  asg::install_interrupt_handlers();
  asg::RunOutcome outcome = asg::run_experiment(exp, options);
  (void)outcome;
  return 0;
}

int cmd_eval(const std::string& run_id, const std::string& benchmark, const std::vector<std::string>& overrides,
             const asg::RunOptions& options) {
  asg::install_interrupt_handlers();
  const asg::EvalOutcome outcome = asg::evaluate_run(run_id, benchmark, overrides, options);
  fmt::print("\n{}", asg::render_leaderboard(asg::Registry(options.registry_path), benchmark, asg::LeaderboardFormat::Markdown));
  (void)outcome;
  return 0;
}

}  // namespace

// `asg data inspect`: what each file is, by content. One line per file (or one JSON object per line);
// a file that cannot be decoded gets a one-line reason and makes the exit code 1, the others still print.
int cmd_data_inspect(const std::vector<std::string>& files, bool json, const asg::DecodeLimits& limits) {
  int failures = 0;
  for (const auto& file : files) {
    try {
      asg::DecodedSticker s = asg::read_sticker(file, limits);
      for (const auto& w : s.warnings) fmt::print(stderr, "warning: {}\n", w);
      const asg::Animation& a = s.animation;
      std::vector<int64_t> delays;
      for (const auto& f : a.frames) delays.push_back(f.duration_ms);
      if (json) {
        nlohmann::json j = {{"file", file},      {"format", asg::media_format_names().name(s.format)},
                            {"width", a.width},  {"height", a.height},
                            {"frames", a.frames.size()}, {"delays_ms", delays},
                            {"loop", a.loop_count},      {"alpha", s.has_alpha}};
        fmt::print("{}\n", j.dump());
      } else {
        fmt::print("{}: {} {}x{}, {} frame{}, delays {} ms, {}, {}\n", file, asg::media_format_names().name(s.format), a.width,
                   a.height, a.frames.size(), a.frames.size() == 1 ? "" : "s", fmt::join(delays, " "),
                   a.loop_count == 0 ? "loops forever" : a.loop_count < 0 ? "plays once" : fmt::format("loops {} times", a.loop_count),
                   s.has_alpha ? "alpha" : "opaque");
      }
    } catch (const asg::Error& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

int cmd_data_export_frames(const std::string& file, const std::string& dir, const asg::DecodeLimits& limits) {
  const int64_t n = asg::export_frames(file, dir, limits);
  fmt::print("{}: {} frame{} written to {}\n", file, n, n == 1 ? "" : "s", dir);
  return 0;
}

int cmd_data_synth(const std::string& experiment_file, const std::vector<std::string>& overrides, const std::string& out,
                   const std::string& format) {
  asg::PluginCatalog catalog;
  const asg::Experiment exp = asg::load_experiment(experiment_file, overrides, catalog);
  const asg::SynthSummary summary =
      asg::synth_dataset(exp, out, asg::media_format_names().parse(format, "--format"));
  fmt::print("wrote {} stickers and {}\nto train on them as {} trains on its [dataset], use:\n\n{}", summary.written,
             summary.manifest.string(), experiment_file, summary.dataset_toml);
  return 0;
}

// Manifest options shared by index, stats, check and pack.
struct ManifestFlags {
  std::string format = "auto", root, path_field, caption_field, id_field, split_field = "split";
  std::vector<std::string> label_fields, formats;
  std::string subset = "all", subset_field = "domain";
  bool no_check_files = false;
  void add_to(CLI::App* cmd) {
    cmd->add_option("--format", format, "auto, jsonl, csv, vsd2m or folder")
        ->check(CLI::IsMember(asg::manifest_format_names().names()))
        ->capture_default_str();
    cmd->add_option("--root", root, "where relative paths start (default: the manifest's folder)");
    cmd->add_option("--path-field", path_field, "field with the file (default: path; vsd2m: visual_path)");
    cmd->add_option("--caption-field", caption_field, "field with the caption (default: caption; vsd2m: eng_cap)");
    cmd->add_option("--id-field", id_field, "field with the id (default: id, else the path; vsd2m: md5)");
    cmd->add_option("--split-field", split_field, "field with the split")->capture_default_str();
    cmd->add_option("--label-fields", label_fields, "fields copied into labels")->delimiter(',');
    cmd->add_option("--formats", formats, "vsd2m: keep only these fmt values")->delimiter(',');
    cmd->add_option("--subset", subset, "vsd2m: all, real or cartoon")->check(CLI::IsMember({"all", "real", "cartoon"}));
    cmd->add_option("--subset-field", subset_field, "vsd2m: the field holding real/cartoon")->capture_default_str();
    cmd->add_flag("--no-check-files", no_check_files, "do not stat every file (missing/empty files then fail when decoded)");
  }
  asg::ManifestOptions options() const {
    asg::ManifestOptions o;
    o.format = asg::manifest_format_names().parse(format, "--format");
    o.root = root;
    o.path_field = path_field;
    o.caption_field = caption_field;
    o.id_field = id_field;
    o.split_field = split_field;
    o.label_fields = label_fields;
    o.formats = formats;
    o.subset = subset;
    o.subset_field = subset_field;
    o.check_files = !no_check_files;
    return o;
  }
};

int64_t default_threads() { return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency())); }

void print_rejected(const asg::Manifest& m) {
  for (const auto& r : m.rejected()) fmt::print("rejected {}: {}\n", r.id, r.reason);
}

// `asg data index`: reads the manifest once, reports what it holds, and writes the binary index that
// sticker_files' `index` parameter opens without parsing.
int cmd_data_index(const std::string& source, const ManifestFlags& flags, const std::string& out) {
  const auto start = std::chrono::steady_clock::now();
  const asg::Manifest m = asg::Manifest::read(source, flags.options());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t per_split[3] = {0, 0, 0};
  for (size_t i = 0; i < m.size(); ++i) ++per_split[static_cast<int>(m.split(i))];
  // Next to the manifest, or in the shards' folder.
  const fs::path index = !out.empty() ? fs::path(out) : m.shards().empty() ? fs::path(source + ".asgidx") : m.root() / "shards.asgidx";
  m.save_index(index);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  fmt::print("{}: {} rows (train {}, validation {}, test {}), {} rejected; read in {:.2f} s; rows take {:.1f} MiB ({:.0f} B/row); "
             "peak memory {:.1f} MiB\nindex written to {} (use: index = \"{}\" in [dataset])\n",
             source, m.size(), per_split[0], per_split[1], per_split[2], m.rejected().size(), seconds,
             m.memory_bytes() / 1048576.0, m.size() ? static_cast<double>(m.memory_bytes()) / m.size() : 0.0,
             usage.ru_maxrss / 1024.0, index.string(), index.string());
  print_rejected(m);
  return 0;
}

int cmd_data_stats(const std::string& source, const ManifestFlags& flags, const asg::DecodeLimits& limits, int64_t threads,
                   bool json) {
  const asg::Manifest m = asg::Manifest::read(source, flags.options());
  fmt::print("{}", asg::dataset_stats(m, limits, threads, json));
  return 0;
}

// `asg data check`: every row decoded; bad files and suspicious ones listed; goes on to the end.
int cmd_data_check(const std::string& source, const ManifestFlags& flags, const asg::DecodeLimits& limits, int64_t threads) {
  const asg::Manifest m = asg::Manifest::read(source, flags.options());
  int64_t bad = static_cast<int64_t>(m.rejected().size()), suspicious = 0;
  print_rejected(m);
  asg::for_each_decoded(m, limits, threads, [&](size_t row, const asg::DecodedSticker* s, const std::string& error) {
    if (!s) {
      fmt::print("bad {}: {}\n", m.id(row), error);
      ++bad;
      return;
    }
    std::vector<std::string> notes = s->warnings;
    const auto& a = s->animation;
    int64_t fast = 0;
    for (const auto& f : a.frames) fast += f.duration_ms <= 10 ? 1 : 0;
    if (a.frames.size() > 1 && fast > 0)
      notes.push_back(fmt::format("{} of {} frames have delays of 0-10 ms (players show them for 100 ms)", fast, a.frames.size()));
    if (a.width * 4 < a.height || a.height * 4 < a.width)
      notes.push_back(fmt::format("an unusual aspect ratio {}x{} (VSD2M filters these)", a.width, a.height));
    for (const auto& n : notes) fmt::print("suspicious {}: {}\n", m.id(row), n);
    suspicious += notes.empty() ? 0 : 1;
  });
  fmt::print("{}: {} rows, {} bad, {} suspicious\n", source, m.size() + m.rejected().size(), bad, suspicious);
  return bad == 0 ? 0 : 1;
}

int cmd_data_pack(const std::string& source, const ManifestFlags& flags, const std::string& out, int64_t per_shard) {
  const asg::Manifest m = asg::Manifest::read(source, flags.options());
  print_rejected(m);
  const asg::PackSummary s = asg::pack_shards(m, out, per_shard);
  fmt::print("{} samples in {} shards under {} ({} rejected rows left out)\nto read them:\n\n[dataset]\nplugin = "
             "\"webdataset\"\nshards = [\"{}\"]\n",
             s.samples, s.shards, out, m.rejected().size(),
             (fs::absolute(out) / fmt::format("shard-{{000000..{:06}}}.tar", std::max<int64_t>(0, s.shards - 1))).string());
  return 0;
}

// The Fréchet distance between two feature matrices saved by numpy: how a reviewer checks a number from
// another pipeline on that pipeline's own features.
int cmd_fd(const std::string& file_a, const std::string& file_b, const std::string& covariance) {
  const asg::frechet::FilesDistance r = asg::frechet::frechet_distance_of_files(file_a, file_b, covariance);
  fmt::print("{}: N = {}, d = {}\n{}: N = {}, d = {}\n", file_a, r.rows_a, r.dim, file_b, r.rows_b, r.dim);
  fmt::print("covariance: {} ({})\n", covariance, covariance == "unbiased" ? "divides by N-1" : "divides by N");
  fmt::print("mean term:  {:.10g}\ntrace term: {:.10g}\n", r.mean_term, r.trace_term);
  if (r.eps > 0) fmt::print("note: not finite as is; {} was added to both covariances' diagonals (pytorch-fid's retry)\n", r.eps);
  fmt::print("fd = {:.10g}\n", r.value);
  return 0;
}

int main(int argc, char** argv) {
  CLI::App app{"asg: ASG Lab, animated sticker generation experiments"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("asg ") + ASG_VERSION + " (plugin API " + std::to_string(asg::kPluginApiMajor) + "." +
                                        std::to_string(asg::kPluginApiMinor) + ")");

  std::string registry_path = "runs/registry.sqlite";
  std::string runs_dir = "runs";
  std::vector<std::string> overrides;

  auto* run = app.add_subcommand("run", "train, sample, evaluate and record one experiment");
  std::string run_file;
  bool dry_run = false;
  run->add_option("file", run_file, "experiment TOML file")->required()->check(CLI::ExistingFile);
  run->add_option("--set", overrides, "override a key: section.key=value (TOML value)")->allow_extra_args(false);
  run->add_flag("--dry-run", dry_run, "validate and print the resolved config; run nothing");
  run->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str();
  run->add_option("--runs-dir", runs_dir, "directory for run outputs")->capture_default_str();
  std::string parent_run;
  // Set by asg sweep for each point it starts; hidden from --help (the group "" hides it).
  run->add_option("--parent-run", parent_run, "the sweep run this run is a point of")->group("");

  auto* resume = app.add_subcommand("resume", "continue a KILLED or FAILED run from its latest checkpoint, as a new attempt");
  std::string resume_id;
  resume->add_option("run", resume_id, "run id (asg runs lists them)")->required();
  resume->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str();
  resume->add_option("--runs-dir", runs_dir, "directory the run's folder is in")->capture_default_str();

  auto* eval = app.add_subcommand("eval", "evaluate a FINISHED run's model under a benchmark's definition, without retraining; "
                                          "adds a result set to the run");
  std::string eval_run, eval_benchmark;
  eval->add_option("run", eval_run, "run id (asg runs lists them)")->required();
  eval->add_option("--benchmark", eval_benchmark, "benchmark definition (asg benchmarks lists them)")->required();
  eval->add_option("--set", overrides, "override a key: section.key=value, e.g. metrics.0.model=/path/i3d.pt")
      ->allow_extra_args(false);
  eval->add_option("--registry", registry_path, "SQLite registry file")->capture_default_str();
  eval->add_option("--runs-dir", runs_dir, "directory the run's folder is in")->capture_default_str();

  auto* validate = app.add_subcommand("validate", "check experiment files and print their resolved config");
  std::vector<std::string> validate_files;
  validate->add_option("files", validate_files, "experiment TOML files")->required()->check(CLI::ExistingFile);
  validate->add_option("--set", overrides, "override a key: section.key=value")->allow_extra_args(false);
  bool validate_build = false;
  validate->add_flag("--build", validate_build,
                     "also build every plugin as a run would (refusing combinations that cannot work) and run the backbone once "
                     "at batch 1 on the CPU; records nothing");

  auto* plugins = app.add_subcommand("plugins", "list plugins, or show one's parameters");
  std::vector<std::string> plugin_args;
  std::vector<std::string> plugin_path;
  plugins->add_option("args", plugin_args, "'list' (default) or 'show NAME'");
  plugins->add_option("--plugin-path", plugin_path, "extra plugin directories or libraries");

  auto* benchmarks = app.add_subcommand("benchmarks", "list benchmark definitions, or show what one pins (assumptions marked)");
  std::vector<std::string> benchmark_args;
  benchmarks->add_option("args", benchmark_args, "'list' (default) or 'show NAME'");

  asg::cli::Action action;
  asg::cli::add_registry_commands(app, action, registry_path, runs_dir);
  asg::cli::add_workflow_commands(app, action, registry_path, runs_dir);
  asg::cli::add_weights_commands(app, action);

  auto* fd = app.add_subcommand("fd", "Fréchet distance between two feature matrices saved with numpy.save ([N, d], float32 or "
                                      "float64), e.g. another pipeline's I3D or Inception features");
  std::string fd_a, fd_b, fd_covariance = "unbiased";
  fd->add_option("a", fd_a, "first .npy file")->required();
  fd->add_option("b", fd_b, "second .npy file")->required();
  fd->add_option("--covariance", fd_covariance, "unbiased (N-1: pytorch-fid, clean-fid, torchmetrics) or biased (N: StyleGAN-V)")
      ->check(CLI::IsMember({"unbiased", "biased"}))
      ->capture_default_str();

  auto* data = app.add_subcommand("data", "sticker files and manifests: inspect, export-frames, synth, index, stats, check, pack");
  data->require_subcommand(1);
  auto* inspect = data->add_subcommand("inspect", "format (by content), canvas, frames, delays, loop count and alpha of files");
  std::vector<std::string> inspect_files;
  bool inspect_json = false;
  asg::DecodeLimits limits;
  inspect->add_option("files", inspect_files, "sticker files (GIF, WebP, PNG, JPEG, BMP, MP4, WebM)")->required();
  inspect->add_flag("--json", inspect_json, "one JSON object per file and line: file, format, width, height, frames, "
                                            "delays_ms, loop, alpha");
  inspect->add_option("--max-canvas-pixels", limits.max_canvas_pixels, "refuse larger canvases")->capture_default_str();
  inspect->add_option("--max-frames", limits.max_frames, "refuse more frames")->capture_default_str();
  inspect->add_option("--max-decoded-bytes", limits.max_decoded_bytes, "refuse files whose RGBA frames need more")
      ->capture_default_str();

  auto* export_frames = data->add_subcommand("export-frames", "write a sticker's decoded frames as RGBA PNG files");
  std::string export_file, export_dir;
  export_frames->add_option("file", export_file, "sticker file (any supported format)")->required();
  export_frames->add_option("dir", export_dir, "output directory (frame_0000.png, ...)")->required();
  export_frames->add_option("--max-canvas-pixels", limits.max_canvas_pixels, "refuse larger canvases")->capture_default_str();
  export_frames->add_option("--max-frames", limits.max_frames, "refuse more frames")->capture_default_str();
  export_frames->add_option("--max-decoded-bytes", limits.max_decoded_bytes, "refuse files whose RGBA frames need more")
      ->capture_default_str();

  auto* synth = data->add_subcommand("synth", "write an experiment's dataset as sticker files plus a manifest");
  std::string synth_file, synth_out, synth_format = "webp";
  synth->add_option("experiment", synth_file, "experiment TOML file whose [dataset] is written")->required()->check(CLI::ExistingFile);
  synth->add_option("out", synth_out, "output directory")->required();
  synth->add_option("--set", overrides, "override a key: section.key=value (e.g. dataset.train_size=64)")->allow_extra_args(false);
  synth->add_option("--format", synth_format, "webp (lossless, exact 8-bit RGBA) or gif")
      ->check(CLI::IsMember({"webp", "gif"}))
      ->capture_default_str();

  ManifestFlags manifest_flags;
  std::string source, out_path;
  int64_t threads = default_threads(), per_shard = 1000;
  bool stats_json = false;
  auto* index = data->add_subcommand("index", "read a manifest or a shard set once: rows per split, rejected rows, time and "
                                              "memory; writes the binary index sticker_files / webdataset open without parsing");
  index->add_option("source", source, "manifest file, folder, or shards (a *.tar pattern, or --format shards)")->required();
  index->add_option("--out", out_path, "index file (default: SOURCE.asgidx; for shards, shards.asgidx in their folder)");
  manifest_flags.add_to(index);
  auto* stats = data->add_subcommand("stats", "frame-count histogram, durations, sizes, formats and alpha of a manifest's files");
  stats->add_option("source", source, "manifest file or folder")->required();
  stats->add_flag("--json", stats_json, "print JSON");
  stats->add_option("--threads", threads, "decoding threads")->capture_default_str();
  manifest_flags.add_to(stats);
  auto* check = data->add_subcommand("check", "decode every file of a manifest; list bad and suspicious ones (exit 1 if any is bad)");
  check->add_option("source", source, "manifest file or folder")->required();
  check->add_option("--threads", threads, "decoding threads")->capture_default_str();
  manifest_flags.add_to(check);
  for (auto* cmd : {stats, check}) {
    cmd->add_option("--max-canvas-pixels", limits.max_canvas_pixels, "refuse larger canvases")->capture_default_str();
    cmd->add_option("--max-frames", limits.max_frames, "refuse more frames")->capture_default_str();
    cmd->add_option("--max-decoded-bytes", limits.max_decoded_bytes, "refuse files whose RGBA frames need more")->capture_default_str();
  }
  auto* pack = data->add_subcommand("pack", "write a manifest's files as WebDataset tar shards (key.<ext> + key.json)");
  pack->add_option("source", source, "manifest file or folder")->required();
  pack->add_option("out", out_path, "output directory")->required();
  pack->add_option("--samples-per-shard", per_shard, "samples per shard")->check(CLI::PositiveNumber)->capture_default_str();
  manifest_flags.add_to(pack);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  try {
    if (*run) {
      asg::RunOptions options = run_options(registry_path, runs_dir);
      if (!parent_run.empty()) {
        const asg::RunRecord parent = asg::Registry(registry_path).resolve_run(parent_run);
        if (parent.role != asg::RunRole::Sweep)
          throw asg::config_error(fmt::format("--parent-run {}: run {} is not a sweep (asg sweep sets this flag)", parent_run, parent.id));
        options.parent_run_id = parent.id;
      }
      return cmd_run(run_file, overrides, dry_run, options);
    }
    if (*resume) {
      asg::install_interrupt_handlers();
      (void)asg::resume_run(resume_id, run_options(registry_path, runs_dir));
      return 0;
    }
    if (*eval) return cmd_eval(eval_run, eval_benchmark, overrides, run_options(registry_path, runs_dir));
    if (*validate) return cmd_validate(validate_files, overrides, validate_build);
    if (*plugins) {
      if (plugin_args.empty() || (plugin_args.size() == 1 && plugin_args[0] == "list")) return cmd_plugins("", plugin_path);
      if (plugin_args.size() == 2 && plugin_args[0] == "show") return cmd_plugins(plugin_args[1], plugin_path);
      throw asg::config_error("usage: asg plugins [list] | asg plugins show NAME");
    }
    if (*benchmarks) {
      if (benchmark_args.empty() || (benchmark_args.size() == 1 && benchmark_args[0] == "list")) return cmd_benchmarks("");
      if (benchmark_args.size() == 2 && benchmark_args[0] == "show") return cmd_benchmarks(benchmark_args[1]);
      throw asg::config_error("usage: asg benchmarks [list] | asg benchmarks show NAME");
    }
    if (*inspect) return cmd_data_inspect(inspect_files, inspect_json, limits);
    if (*export_frames) return cmd_data_export_frames(export_file, export_dir, limits);
    if (*synth) return cmd_data_synth(synth_file, overrides, synth_out, synth_format);
    if (*index) return cmd_data_index(source, manifest_flags, out_path);
    if (*stats) return cmd_data_stats(source, manifest_flags, limits, threads, stats_json);
    if (*check) return cmd_data_check(source, manifest_flags, limits, threads);
    if (*pack) return cmd_data_pack(source, manifest_flags, out_path, per_shard);
    if (*fd) return cmd_fd(fd_a, fd_b, fd_covariance);
    if (action) return action();
  } catch (const asg::Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return asg::exit_code_for(e.kind());
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
