// Animations for media tests, written by the tests themselves: every frame differs from the others (an
// encoder may merge identical frames) and colours vary per pixel. No torch.
#pragma once

#include <cstdint>

#include "asg/media/gif.h"

namespace asg::testing {

// w x h, `frames` frames of 40 * (t + 1) ms. Alpha is graded over 0..255, or with binary_alpha 0 or 255 only
// (what GIF can hold).
inline Animation test_animation(int w, int h, int frames, bool binary_alpha = false) {
  Animation a;
  a.width = w;
  a.height = h;
  for (int t = 0; t < frames; ++t) {
    RgbaFrame f;
    f.duration_ms = 40 * (t + 1);
    f.rgba.resize(static_cast<size_t>(w) * h * 4);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        uint8_t* p = &f.rgba[(static_cast<size_t>(y) * w + x) * 4];
        p[0] = static_cast<uint8_t>(x * 37 + t * 11);
        p[1] = static_cast<uint8_t>(y * 53);
        p[2] = static_cast<uint8_t>((x + y + t) * 19);
        const int alpha = (x * 31 + y * 7 + t * 64) % 256;
        p[3] = static_cast<uint8_t>(binary_alpha ? (alpha < 128 ? 0 : 255) : alpha);
      }
    a.frames.push_back(std::move(f));
  }
  return a;
}

}  // namespace asg::testing
