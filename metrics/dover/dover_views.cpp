// DOVER's technical and aesthetic views (see dover_views.h).
#include "dover_views.h"

#include <cmath>

#include <fmt/format.h>

#include "asg/error.h"

namespace asg::metrics::dover {
namespace {

constexpr int64_t kSize = 224, kGrid = 7, kPatch = 32, kClipLength = 32, kTechnicalFragments = 3, kFrameInterval = 2;

// UnifiedFrameSampler.get_frame_indices: `fragments` groups of `length` frames `interval` apart, group k
// starting at k (N / fragments) plus a random offset when the group's span leaves room; wrapped modulo N.
torch::Tensor sample_frames(int64_t frames, int64_t fragments, int64_t length, int64_t interval, at::Generator& generator) {
  const int64_t span = frames / fragments;
  auto offsets = torch::zeros({fragments}, torch::kLong);
  if (span > length * interval) offsets = torch::randint(0, span - length * interval, {fragments}, generator, torch::kLong);
  auto starts = torch::arange(fragments, torch::kLong) * span + offsets;
  auto steps = torch::arange(length, torch::kLong) * interval;
  return (starts.unsqueeze(1) + steps.unsqueeze(0)).flatten().remainder(frames);
}

const torch::Tensor& imagenet(bool std) {
  static const torch::Tensor mean = torch::tensor({123.675f, 116.28f, 103.53f}).view({3, 1, 1, 1});
  static const torch::Tensor deviation = torch::tensor({58.395f, 57.12f, 57.375f}).view({3, 1, 1, 1});
  return std ? deviation : mean;
}

torch::Tensor normalised(const torch::Tensor& view) { return (view.to(torch::kFloat32) - imagenet(false)) / imagenet(true); }

}  // namespace

torch::Tensor technical_frame_indices(int64_t frames, at::Generator& generator) {
  return sample_frames(frames, kTechnicalFragments, kClipLength, kFrameInterval, generator);
}

torch::Tensor aesthetic_frame_indices(int64_t frames, at::Generator& generator) {
  // dover.yml's aesthetic view: t_frag 32 groups of 32 / 32 = 1 frame.
  return sample_frames(frames, kClipLength, 1, kFrameInterval, generator);
}

torch::Tensor technical_view_pixels(const torch::Tensor& video, const torch::Tensor& indices, at::Generator& generator) {
  const int64_t h = video.size(1), w = video.size(2);
  auto clip = video.index_select(0, indices).permute({0, 3, 1, 2});  // [T, 3, H, W] uint8
  const double ratio = std::min(static_cast<double>(h) / kSize, static_cast<double>(w) / kSize);
  torch::Tensor frames;
  if (ratio < 1) {
    // get_spatial_fragments: interpolate(video / 255., scale_factor = 1 / ratio, bilinear) * 255, cast to uint8
    // (truncating).
    const double scale = 1.0 / ratio;
    auto up = torch::nn::functional::interpolate(
        clip.to(torch::kFloat32) / 255.0,
        torch::nn::functional::InterpolateFuncOptions().scale_factor(std::vector<double>{scale, scale}).mode(torch::kBilinear).align_corners(false));
    frames = (up * 255.0).to(torch::kUInt8).to(torch::kFloat32);
  } else {
    frames = clip.to(torch::kFloat32);
  }
  // The grid is laid on the video's own size even after upscaling (the reference's quirk): cell origins
  // min((H / 7) i, H - 32), and a random offset in [0, H / 7 - 32) per cell and fragment when H / 7 > 32.
  const int64_t cell_h = h / kGrid, cell_w = w / kGrid;
  auto offsets_h = cell_h > kPatch ? torch::randint(cell_h - kPatch, {kGrid, kGrid, kTechnicalFragments}, generator, torch::kLong)
                                   : torch::zeros({kGrid, kGrid, kTechnicalFragments}, torch::kLong);
  auto offsets_w = cell_w > kPatch ? torch::randint(cell_w - kPatch, {kGrid, kGrid, kTechnicalFragments}, generator, torch::kLong)
                                   : torch::zeros({kGrid, kGrid, kTechnicalFragments}, torch::kLong);
  auto oh = offsets_h.accessor<int64_t, 3>();
  auto ow = offsets_w.accessor<int64_t, 3>();
  const int64_t t = frames.size(0);
  auto view = torch::zeros({3, t, kSize, kSize}, torch::kFloat32);
  auto source = frames.permute({1, 0, 2, 3});  // [3, T, H', W']
  for (int64_t fragment = 0; fragment < kTechnicalFragments; ++fragment) {
    const int64_t from = fragment * t / kTechnicalFragments, to = (fragment + 1) * t / kTechnicalFragments;
    for (int64_t i = 0; i < kGrid; ++i)
      for (int64_t j = 0; j < kGrid; ++j) {
        const int64_t y = std::min(cell_h * i, h - kPatch) + oh[i][j][fragment];
        const int64_t x = std::min(cell_w * j, w - kPatch) + ow[i][j][fragment];
        view.slice(1, from, to).slice(2, i * kPatch, (i + 1) * kPatch).slice(3, j * kPatch, (j + 1) * kPatch)
            .copy_(source.slice(1, from, to).slice(2, y, y + kPatch).slice(3, x, x + kPatch));
      }
  }
  return view;
}

torch::Tensor aesthetic_view_pixels(const torch::Tensor& video, const torch::Tensor& indices, bool antialias) {
  // torchvision Resize((224, 224)) on the uint8 frames: bilinear on float, rounded back to uint8.
  auto clip = video.index_select(0, indices).permute({0, 3, 1, 2}).to(torch::kFloat32);  // [T, 3, H, W]
  auto resized = torch::nn::functional::interpolate(clip, torch::nn::functional::InterpolateFuncOptions()
                                                              .size(std::vector<int64_t>{kSize, kSize})
                                                              .mode(torch::kBilinear)
                                                              .align_corners(false)
                                                              .antialias(antialias));
  return resized.round().clamp(0, 255).to(torch::kUInt8).permute({1, 0, 2, 3});  // [3, T, 224, 224]
}

Views make_views(const torch::Tensor& video, at::Generator& generator, bool aesthetic_antialias) {
  if (video.dim() != 4 || video.size(3) != 3 || video.scalar_type() != torch::kUInt8)
    throw internal_error("dover::make_views: expected uint8 [N, H, W, 3]");
  const int64_t n = video.size(0);
  at::Generator temporal = at::detail::createCPUGenerator(generator.current_seed() ^ 0x9e3779b97f4a7c15ull);
  auto technical_indices = technical_frame_indices(n, temporal);
  auto aesthetic_indices = aesthetic_frame_indices(n, temporal);
  Views v;
  v.technical = normalised(technical_view_pixels(video, technical_indices, generator))
                    .view({3, kTechnicalFragments, kClipLength, kSize, kSize})
                    .permute({1, 0, 2, 3, 4})
                    .contiguous();
  v.aesthetic = normalised(aesthetic_view_pixels(video, aesthetic_indices, aesthetic_antialias)).unsqueeze(0).contiguous();
  return v;
}

torch::Tensor enlarge_small_frames(const torch::Tensor& video) {
  const int64_t h = video.size(1), w = video.size(2);
  if (h >= kPatch && w >= kPatch) return video;
  const double scale = static_cast<double>(kPatch) / static_cast<double>(std::min(h, w));
  const auto size = std::vector<int64_t>{std::max<int64_t>(kPatch, std::llround(h * scale)), std::max<int64_t>(kPatch, std::llround(w * scale))};
  auto frames = video.permute({0, 3, 1, 2}).to(torch::kFloat32);
  auto enlarged = torch::nn::functional::interpolate(
      frames, torch::nn::functional::InterpolateFuncOptions().size(size).mode(torch::kBilinear).align_corners(false));
  return enlarged.round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
}

double fuse(double technical, double aesthetic) {
  const double x = (technical - 0.1107) / 0.07355 * 0.6104 + (aesthetic + 0.08285) / 0.03774 * 0.3896;
  return 1.0 / (1.0 + std::exp(-x));
}

}  // namespace asg::metrics::dover
