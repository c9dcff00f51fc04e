// asg data (inspect, export-frames, synth, index, stats, check, pack) and asg fd.
#include "data_commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "asg/data/manifest.h"
#include "asg/data/tools.h"
#include "asg/data_synth.h"
#include "asg/error.h"
#include "asg/experiment.h"
#include "asg/media/sticker_file.h"
#include "asg/plugin_catalog.h"
#include "frechet_files.h"

namespace asg::cli {

namespace fs = std::filesystem;

namespace {

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

// Every flag of the data commands: one set, since CLI11 binds options to variables that must outlive parsing.
struct DataFlags {
  std::vector<std::string> inspect_files, overrides;
  bool inspect_json = false, stats_json = false;
  asg::DecodeLimits limits;
  std::string export_file, export_dir, synth_file, synth_out, synth_format = "webp", source, out_path;
  std::string fd_a, fd_b, fd_covariance = "unbiased";
  ManifestFlags manifest_flags;
  int64_t threads = default_threads(), per_shard = 1000;
};

}  // namespace

void add_data_commands(CLI::App& app, Action& action) {
  auto flags = std::make_shared<DataFlags>();
  DataFlags& f = *flags;
  // Each command sets the action when CLI11 chooses it.
  auto on_choose = [&action, flags](CLI::App* cmd, std::function<int(const DataFlags&)> run) {
    cmd->callback([&action, flags, run] { action = [flags, run] { return run(*flags); }; });
  };
  auto* fd = app.add_subcommand("fd", "Fréchet distance between two feature matrices saved with numpy.save ([N, d], float32 or "
                                      "float64), e.g. another pipeline's I3D or Inception features");
  fd->add_option("a", f.fd_a, "first .npy file")->required();
  fd->add_option("b", f.fd_b, "second .npy file")->required();
  fd->add_option("--covariance", f.fd_covariance, "unbiased (N-1: pytorch-fid, clean-fid, torchmetrics) or biased (N: StyleGAN-V)")
      ->check(CLI::IsMember({"unbiased", "biased"}))
      ->capture_default_str();

  auto* data = app.add_subcommand("data", "sticker files and manifests: inspect, export-frames, synth, index, stats, check, pack");
  data->require_subcommand(1);
  auto* inspect = data->add_subcommand("inspect", "format (by content), canvas, frames, delays, loop count and alpha of files");
  inspect->add_option("files", f.inspect_files, "sticker files (GIF, WebP, PNG, JPEG, BMP, MP4, WebM)")->required();
  inspect->add_flag("--json", f.inspect_json, "one JSON object per file and line: file, format, width, height, frames, "
                                            "delays_ms, loop, alpha");
  inspect->add_option("--max-canvas-pixels", f.limits.max_canvas_pixels, "refuse larger canvases")->capture_default_str();
  inspect->add_option("--max-frames", f.limits.max_frames, "refuse more frames")->capture_default_str();
  inspect->add_option("--max-decoded-bytes", f.limits.max_decoded_bytes, "refuse files whose RGBA frames need more")
      ->capture_default_str();

  auto* export_frames = data->add_subcommand("export-frames", "write a sticker's decoded frames as RGBA PNG files");
  export_frames->add_option("file", f.export_file, "sticker file (any supported format)")->required();
  export_frames->add_option("dir", f.export_dir, "output directory (frame_0000.png, ...)")->required();
  export_frames->add_option("--max-canvas-pixels", f.limits.max_canvas_pixels, "refuse larger canvases")->capture_default_str();
  export_frames->add_option("--max-frames", f.limits.max_frames, "refuse more frames")->capture_default_str();
  export_frames->add_option("--max-decoded-bytes", f.limits.max_decoded_bytes, "refuse files whose RGBA frames need more")
      ->capture_default_str();

  auto* synth = data->add_subcommand("synth", "write an experiment's dataset as sticker files plus a manifest");
  synth->add_option("experiment", f.synth_file, "experiment TOML file whose [dataset] is written")->required()->check(CLI::ExistingFile);
  synth->add_option("out", f.synth_out, "output directory")->required();
  synth->add_option("--set", f.overrides, "override a key: section.key=value (e.g. dataset.train_size=64)")->allow_extra_args(false);
  synth->add_option("--format", f.synth_format, "webp (lossless, exact 8-bit RGBA) or gif")
      ->check(CLI::IsMember({"webp", "gif"}))
      ->capture_default_str();

  auto* index = data->add_subcommand("index", "read a manifest or a shard set once: rows per split, rejected rows, time and "
                                              "memory; writes the binary index sticker_files / webdataset open without parsing");
  index->add_option("source", f.source, "manifest file, folder, or shards (a *.tar pattern, or --format shards)")->required();
  index->add_option("--out", f.out_path, "index file (default: SOURCE.asgidx; for shards, shards.asgidx in their folder)");
  f.manifest_flags.add_to(index);
  auto* stats = data->add_subcommand("stats", "frame-count histogram, durations, sizes, formats and alpha of a manifest's files");
  stats->add_option("source", f.source, "manifest file or folder")->required();
  stats->add_flag("--json", f.stats_json, "print JSON");
  stats->add_option("--threads", f.threads, "decoding threads")->capture_default_str();
  f.manifest_flags.add_to(stats);
  auto* check = data->add_subcommand("check", "decode every file of a manifest; list bad and suspicious ones (exit 1 if any is bad)");
  check->add_option("source", f.source, "manifest file or folder")->required();
  check->add_option("--threads", f.threads, "decoding threads")->capture_default_str();
  f.manifest_flags.add_to(check);
  for (auto* cmd : {stats, check}) {
    cmd->add_option("--max-canvas-pixels", f.limits.max_canvas_pixels, "refuse larger canvases")->capture_default_str();
    cmd->add_option("--max-frames", f.limits.max_frames, "refuse more frames")->capture_default_str();
    cmd->add_option("--max-decoded-bytes", f.limits.max_decoded_bytes, "refuse files whose RGBA frames need more")->capture_default_str();
  }
  auto* pack = data->add_subcommand("pack", "write a manifest's files as WebDataset tar shards (key.<ext> + key.json)");
  pack->add_option("source", f.source, "manifest file or folder")->required();
  pack->add_option("out", f.out_path, "output directory")->required();
  pack->add_option("--samples-per-shard", f.per_shard, "samples per shard")->check(CLI::PositiveNumber)->capture_default_str();
  f.manifest_flags.add_to(pack);
  on_choose(fd, [](const DataFlags& f) { return cmd_fd(f.fd_a, f.fd_b, f.fd_covariance); });
  on_choose(inspect, [](const DataFlags& f) { return cmd_data_inspect(f.inspect_files, f.inspect_json, f.limits); });
  on_choose(export_frames, [](const DataFlags& f) { return cmd_data_export_frames(f.export_file, f.export_dir, f.limits); });
  on_choose(synth, [](const DataFlags& f) { return cmd_data_synth(f.synth_file, f.overrides, f.synth_out, f.synth_format); });
  on_choose(index, [](const DataFlags& f) { return cmd_data_index(f.source, f.manifest_flags, f.out_path); });
  on_choose(stats, [](const DataFlags& f) { return cmd_data_stats(f.source, f.manifest_flags, f.limits, f.threads, f.stats_json); });
  on_choose(check, [](const DataFlags& f) { return cmd_data_check(f.source, f.manifest_flags, f.limits, f.threads); });
  on_choose(pack, [](const DataFlags& f) { return cmd_data_pack(f.source, f.manifest_flags, f.out_path, f.per_shard); });
}

}  // namespace asg::cli
