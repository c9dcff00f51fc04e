// `asg data ...` commands that need a dataset plugin or torch: writing a dataset's samples out as real
// sticker files. Host-only.
#pragma once

#include <filesystem>
#include <string>

#include "asg/experiment.h"
#include "asg/media/sticker_file.h"

namespace asg {

struct SynthSummary {
  int64_t written = 0;
  std::filesystem::path manifest;
  std::string dataset_toml;  // a [dataset] section that reads the files back as the experiment saw them
};

// Writes every sample of every split of the experiment's [dataset] as a sticker file (GIF or lossless
// WebP) under `out`/<split>/, plus `out`/manifest.jsonl with id, path, caption, split and labels in
// split order, so that sticker_files over the manifest gives the same samples in the same order.
// GIF keeps exactly only stickers with at most 255 colours per frame and binary alpha (as the synthetic
// ones are); WebP (the default) keeps 8-bit RGBA exactly.
SynthSummary synth_dataset(const Experiment& experiment, const std::filesystem::path& out, MediaFormat format);

// Decodes `file` (any supported format, by content) and writes its full-canvas frames as RGBA PNG files
// dir/frame_0000.png, frame_0001.png, ... in frame order; returns how many. For debugging and for
// checking the decoders against other tools.
int64_t export_frames(const std::filesystem::path& file, const std::filesystem::path& dir, const DecodeLimits& limits);

}  // namespace asg
