// `asg data synth`: writing an experiment's dataset samples out as sticker files (needs the dataset
// plugin, hence torch). Host-only.
#pragma once

#include <cstdint>
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

}  // namespace asg
