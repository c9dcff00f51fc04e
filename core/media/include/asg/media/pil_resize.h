// Pillow's Image.resize of an 8-bit image, bit for bit (libImaging/Resample.c): the filter's support widened by
// the downscale factor (antialiasing), 22-bit fixed-point coefficients, two one-axis passes that each round
// and clip to 8 bits, in Pillow 13's order (the vertical pass first when it shrinks the image and removes
// more than twice as many rows as the horizontal pass removes columns). What the reference preprocessing
// this project ports does to PIL images: OpenAI CLIP's (bicubic), I2VGen-XL's image-encoder input (box,
// then bilinear). torch's and OpenCV's filters give other pixels (their bicubic is a = -0.75, Pillow's -0.5).
#pragma once

#include <cstdint>
#include <vector>

namespace asg {

enum class PilFilter { Box, Bilinear, Bicubic };

// pixels: height x width x channels, interleaved (RGB: channels = 3). Returns out_height x out_width x
// channels. A size equal to the input's leaves that axis untouched, as Pillow does.
std::vector<uint8_t> pil_resize(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels, int64_t out_height,
                                int64_t out_width, PilFilter filter);

}  // namespace asg
