#include "asg/data_synth.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include "asg/kinds/dataset.h"
#include "asg/plugin_catalog.h"
#include "asg/files.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

// Straight RGBA [T, 4, H, W] in [0, 1] -> 8-bit frames (round to nearest, as the writers expect).
Animation to_animation(const Sticker& s) {
  const auto frames = (s.frames.clamp(0, 1) * 255).round().to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  Animation a;
  a.height = static_cast<int32_t>(frames.size(1));
  a.width = static_cast<int32_t>(frames.size(2));
  const size_t bytes = static_cast<size_t>(a.width) * a.height * 4;
  for (int64_t t = 0; t < frames.size(0); ++t) {
    const uint8_t* p = frames[t].data_ptr<uint8_t>();
    const int32_t ms = t < static_cast<int64_t>(s.frame_durations_ms.size()) ? s.frame_durations_ms[t] : 100;
    a.frames.push_back(RgbaFrame{std::vector<uint8_t>(p, p + bytes), ms});
  }
  return a;
}

std::string file_name(const std::string& id) {
  std::string name;
  for (char c : id) name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return name;
}

}  // namespace

SynthSummary synth_dataset(const Experiment& exp, const fs::path& out, MediaFormat format) {
  if (format != MediaFormat::Gif && format != MediaFormat::WebP)
    throw config_error(fmt::format("--format {}: synth writes gif or webp", media_format_names().name(format)));
  const PluginSlot& slot = exp.slot("dataset");
  DatasetContext context;
  context.limits = DecodeLimits{exp.data.integer("max_canvas_pixels"), exp.data.integer("max_frames"),
                                exp.data.integer("max_decoded_bytes")};
  auto plugin = load_plugin(*slot.record);
  auto dataset = create_plugin<Dataset>(*plugin, slot.params, context);
  const DatasetInfo info = dataset->info();
  const char* ext = format == MediaFormat::Gif ? "gif" : "webp";
  fs::create_directories(out);
  SynthSummary summary;
  summary.manifest = out / "manifest.jsonl";
  std::string manifest;
  for (Split split : {Split::Train, Split::Validation, Split::Test}) {
    const int64_t n = dataset->size(split);
    if (n > 0) fs::create_directories(out / split_name(split));
    for (int64_t i = 0; i < n; ++i) {
      const Sticker s = dataset->get(split, i);
      const std::string relative = fmt::format("{}/{}.{}", split_name(split), file_name(s.id), ext);
      const Animation a = to_animation(s);
      if (format == MediaFormat::Gif) write_gif(out / relative, a);
      else write_webp(out / relative, a, /*lossless=*/true);
      nlohmann::json row = {{"id", s.id}, {"path", relative}, {"caption", s.caption}, {"split", split_name(split)}};
      if (!s.labels.empty()) row["labels"] = s.labels;
      manifest += row.dump() + "\n";
      ++summary.written;
    }
  }
  write_text_file_atomic(summary.manifest, manifest);
  // What reads the files back exactly: the same size and frame count, no compositing, no resampling,
  // and frames taken by their timestamps, because encoders merge identical consecutive frames into one
  // longer frame (libwebp always does) and only the timing says how many there were.
  summary.dataset_toml = fmt::format(
      "[dataset]\nplugin = \"sticker_files\"\nmanifest = \"{}\"\nheight = {}\nwidth = {}\nframes = {}\n"
      "frame_selection = \"fps\"\nfps = {}\nalpha = \"keep\"\n",
      fs::absolute(summary.manifest).string(), info.height, info.width, info.frames, info.fps);
  if (!info.vocabulary.name.empty())
    summary.dataset_toml += fmt::format("vocabulary = \"{}\"\nvocabulary_version = \"{}\"\n", info.vocabulary.name,
                                        info.vocabulary.version);
  return summary;
}

}  // namespace asg
