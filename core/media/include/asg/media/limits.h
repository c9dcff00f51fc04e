// Limits that stop decompression bombs: a small file that decodes to gigabytes. Each is a config key
// ([dataset] / data.* of the data plugins) with a safe default. No torch.
#pragma once

#include <cstdint>

namespace asg {

struct DecodeLimits {
  int64_t max_canvas_pixels = 4096 * 4096;       // width * height (data.max_canvas_pixels)
  int64_t max_frames = 2000;                     // data.max_frames
  int64_t max_decoded_bytes = int64_t{1} << 30;  // frames * width * height * 4 (data.max_decoded_bytes)
};

}  // namespace asg
