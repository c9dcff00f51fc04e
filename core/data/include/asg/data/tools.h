// The torch-free `asg data` tools over manifests and files: decoding every row on threads, packing
// WebDataset shards, the dataset statistics, and a sticker's frames as PNG files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "asg/data/manifest.h"
#include "asg/media/sticker_file.h"

namespace asg {

// Decodes `file` (any supported format, by content) and writes its full-canvas frames as RGBA PNG files
// dir/frame_0000.png, frame_0001.png, ... in frame order; returns how many. For debugging and for
// checking the decoders against other tools.
int64_t export_frames(const std::filesystem::path& file, const std::filesystem::path& dir, const DecodeLimits& limits);

// Every row's file decoded on `threads` threads; `visit(row, sticker or nullptr, error)` is called for
// each row in manifest order (from the calling thread).
void for_each_decoded(const Manifest& manifest, const DecodeLimits& limits, int64_t threads,
                      const std::function<void(size_t row, const DecodedSticker* sticker, const std::string& error)>& visit);

struct PackSummary {
  int64_t samples = 0, shards = 0;
  std::vector<std::filesystem::path> files;
};
// The manifest's usable rows as WebDataset shards out/shard-NNNNNN.tar, `per_shard` samples each, in
// manifest order: <key>.<format> with the file's bytes as they are, and <key>.json with id, caption,
// split and labels. Rejected rows are left out (and listed by the caller from manifest.rejected()).
PackSummary pack_shards(const Manifest& manifest, const std::filesystem::path& out, int64_t per_shard);

// The stats of `asg data stats`: decoded frame counts (in the VSD2M figure's bins), durations, canvas
// sizes, formats, alpha and file sizes. Returned as the text it prints (or JSON).
std::string dataset_stats(const Manifest& manifest, const DecodeLimits& limits, int64_t threads, bool json);

}  // namespace asg
