// DOVER's two views of a video (Wu et al. 2023, "Exploring Video Quality Assessment on User Generated Contents
// from Aesthetic and Technical Perspectives"; VQAssessment/DOVER at f1ddc96, `evaluate_one_video.py` with
// dover.yml's test settings), built exactly as the reference builds them:
//
//   technical  3 temporal fragments x 32 frames: frame (2s + k (N/3)) mod N of fragment k; each frame cut into a
//              7 x 7 grid of 32 x 32 patches ("fragments") pasted into a 224 x 224 mosaic, the grid on the
//              video's own size (cell origin min((H/7) i, H - 32)), a random offset per cell and fragment when
//              H/7 > 32; a video under 224 on its short side is first upscaled (bilinear, on /255 values,
//              truncated back to 8 bits) -> [3, 3, 32, 224, 224]
//   aesthetic  32 frames, frame k (N/32) mod N (all frame 0 below 32 frames), squashed to 224 x 224 (bilinear,
//              no antialiasing as in torchvision 0.14 that DOVER pins; rounded to 8 bits) -> [1, 3, 32, 224, 224]
//
// Both normalised with ImageNet's mean and std on the 0-255 scale. Where the reference draws random offsets
// (cells when H/7 or W/7 > 32, from torch's generator; temporal offsets when N >= 96 / 195, from numpy's),
// these come from `generator`: the cell offsets are the reference's numbers for the same torch seed, the
// temporal ones are drawn with the same distribution but not numpy's numbers. Needs torch.
#pragma once

#include <torch/torch.h>

namespace asg::metrics::dover {

struct Views {
  torch::Tensor technical;  // float32 [3, 3, 32, 224, 224] (fragment, channel, frame, y, x)
  torch::Tensor aesthetic;  // float32 [1, 3, 32, 224, 224]
};

// Which frames each view takes from a video of `frames` frames: technical [96] (fragment-major), aesthetic [32].
torch::Tensor technical_frame_indices(int64_t frames, at::Generator& generator);
torch::Tensor aesthetic_frame_indices(int64_t frames, at::Generator& generator);

// The views before normalisation, as 8-bit values in float32 (technical) or uint8 (aesthetic), [3, T, 224, 224];
// exposed for the tests that compare them with the reference's.
torch::Tensor technical_view_pixels(const torch::Tensor& video, const torch::Tensor& indices, at::Generator& generator);
torch::Tensor aesthetic_view_pixels(const torch::Tensor& video, const torch::Tensor& indices, bool antialias);

// video: uint8 [N, H, W, 3] RGB, H and W at least 32 (the reference fails below; see enlarge_small_frames).
// The cell offsets are drawn from `generator` in the reference's order (rows, then columns); the temporal
// offsets (only for N >= 96) from a generator derived from its seed, so the cell offsets stay the
// reference's whatever N is.
Views make_views(const torch::Tensor& video, at::Generator& generator, bool aesthetic_antialias = false);

// Frames under 32 pixels on a side, where DOVER's reference fails (its technical view cuts 32 x 32 patches on
// the video's own grid), enlarged bilinearly (as 8-bit values, rounded) so that the short side is 32; other
// videos unchanged. Not the reference's behaviour: it has none there. uint8 [N, H, W, 3] -> the same.
torch::Tensor enlarge_small_frames(const torch::Tensor& video);

// DOVER's fusion of the two branches' raw scores (evaluate_one_video.py fuse_results): a sigmoid of the
// technical score standardised by (0.1107, 0.07355) weighted 0.6104, plus the aesthetic score standardised by
// (-0.08285, 0.03774) weighted 0.3896.
double fuse(double technical, double aesthetic);

}  // namespace asg::metrics::dover
