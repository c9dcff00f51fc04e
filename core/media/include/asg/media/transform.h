// From a decoded sticker to a training sample: which frames, how alpha is handled, how the canvas is
// resized. Torch-free (OpenCV does the pixel work); dataset plugins turn the result into a Sticker.
//
// Frame selection picks `frames` source frames (indices into the animation, in time order):
// - uniform    evenly spaced: round-half-up of linspace(0, F - 1, frames). Repeats when F < frames.
// - fps        timestamp-aware: the animation played at its per-frame delays (delays <= 10 ms play as
//              100 ms, as browsers do) and sampled every 1/fps seconds from t = 0, wrapping around
//              (stickers loop). A frame shown for 300 ms at fps 10 appears 3 times.
// - luv        keyframes by LUV difference: frame 0 plus the frames - 1 frames with the largest mean
//              absolute LUV difference to their predecessor (ties: the earlier frame), in time order.
// - kmeans     keyframes by clustering: each frame's feature is its 16x16 area-downscaled LUV image;
//              cv::kmeans (k-means++, 3 attempts, seeded per sample) groups the distinct frames into
//              min(frames, distinct) clusters; each cluster contributes its frame nearest the centre.
// luv and kmeans return at most `frames` distinct frames. A selection shorter than `frames` is then
// stretched to `frames` by repeating (uniform over the selection) or, with pad_short, padded with copies
// of its last frame marked invalid. With random_frames = [kmin, kmax] (RDTF), each sample selects a
// random k in [kmin, kmax] (seeded per sample) and is padded to kmax: the validity mask then
// marks the k real frames, so the training loss ignores the padding.
//
// Alpha: composite straight RGBA over an opaque background (white by default, as the VSD2M/RDTF code
// does; alpha becomes 1) or keep it. Resize: stretch to the target (the paper's choice: aspect ratio
// not kept) or letterbox (fit inside, centred, the border transparent or the background colour). The
// filter is area averaging when shrinking (antialiased) and bicubic when enlarging (clamped to [0, 1]),
// or one of them forced. Resizing works on premultiplied colour, so transparent pixels' hidden colour
// never bleeds into visible edges; without resizing, values are exactly k / 255. Area shrinking is the
// exact box mean INTER_AREA defines (integer sums for whole blocks, separable float taps otherwise);
// bicubic, and area when one side grows, go through OpenCV in 16 bits (steps of 1/65025).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asg/media/gif.h"
#include "asg/media/limits.h"
#include "asg/params.h"

namespace asg {

enum class FrameSelection { Uniform, Fps, Luv, KMeans };
const EnumNames<FrameSelection>& frame_selection_names();  // "uniform", "fps", "luv", "kmeans"
enum class ResizeMode { Stretch, Letterbox };
const EnumNames<ResizeMode>& resize_mode_names();  // "stretch", "letterbox"
enum class ResizeFilter { Auto, Area, Bicubic };
const EnumNames<ResizeFilter>& resize_filter_names();  // "auto", "area", "bicubic"

struct SampleTransform {
  int64_t frames = 8;
  int64_t height = 64;
  int64_t width = 64;
  FrameSelection selection = FrameSelection::Uniform;
  double fps = 8;               // for FrameSelection::Fps
  bool pad_short = false;       // pad (masked) instead of repeating when fewer frames were selected
  int64_t random_min = 0;       // RDTF random k: both 0 = off; else frames == random_max
  int64_t random_max = 0;
  bool keep_alpha = false;      // false: composite over `background`
  std::array<uint8_t, 3> background{255, 255, 255};
  ResizeMode resize = ResizeMode::Stretch;
  ResizeFilter filter = ResizeFilter::Auto;

  // The [dataset] keys below, read from a plugin's Params; transform_params() declares them.
  static SampleTransform from(const Params& params);

  // The seed of sample `id`'s random choices (its random_frames count, its k-means keyframes) in training
  // epoch `epoch`: with random_frames on, a new draw every epoch (RDTF redraws k each epoch); without it,
  // the sample's own seed whatever the epoch.
  uint64_t sample_seed(std::string_view id, int64_t epoch = 0) const;
  // What evaluation reads: random_frames is a training augmentation, so its references are whole clips.
  SampleTransform for_evaluation() const;
};
// Parameter specs for every field (frames, height, width, frame_selection, fps, pad_short,
// random_frames, alpha, background, resize, resize_filter), for dataset plugins to append to theirs.
std::vector<ParamSpec> transform_params(int64_t default_size = 64, int64_t default_frames = 8);

// Source frame indices chosen by `selection` (see above); `seed` drives kmeans.
std::vector<int64_t> select_frames(const Animation& animation, FrameSelection selection, int64_t frames, double fps,
                                   uint64_t seed);

struct SampleFrames {
  int64_t frames = 0, height = 0, width = 0;
  std::vector<float> rgba;               // [frames, 4, height, width], straight RGBA in [0, 1]
  std::vector<uint8_t> valid;            // [frames]; 0 = padding
  std::vector<int64_t> source_frames;    // which animation frame each output frame shows
  std::vector<int32_t> durations_ms;     // how long each shows: its delay (0-10 ms read as 100 ms), 1000/fps when
                                         // resampled at a frame rate, 0 for padding
};

// Selects, composites and resizes. `seed` varies kmeans and the random k; pass a value derived from
// the sample id. `keyframes`, when not empty, replaces the selection (e.g. VSD2M's precomputed
// keyframe_idx; indices past the last frame are dropped) and is then stretched or padded the same way.
SampleFrames make_sample(const Animation& animation, const SampleTransform& transform, uint64_t seed,
                         const std::vector<int64_t>& keyframes = {});

// Decodes a sticker file's bytes (`name` in errors) and makes the sample, decoding only what the sample
// needs where it can: a GIF under uniform or fps selection is planned from its frames' timing, and the
// compressed data of frames it does not show is skipped when their disposal restores the canvas. The
// result is the same as make_sample(decode_sticker(...)). The path overload reads video directly.
SampleFrames load_sample(std::span<const uint8_t> bytes, const std::string& name, const DecodeLimits& limits,
                         const SampleTransform& transform, uint64_t seed, const std::vector<int64_t>& keyframes = {});
SampleFrames load_sample(const std::filesystem::path& file, const DecodeLimits& limits, const SampleTransform& transform,
                         uint64_t seed, const std::vector<int64_t>& keyframes = {});

}  // namespace asg
