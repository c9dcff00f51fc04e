#include "asg/media/pil_resize.h"

#include <algorithm>
#include <cmath>

#include "asg/error.h"

namespace asg {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit images

double filter_value(PilFilter filter, double x) {
  switch (filter) {
    case PilFilter::Box: return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
    case PilFilter::Bilinear:
      if (x < 0.0) x = -x;
      return x < 1.0 ? 1.0 - x : 0.0;
    case PilFilter::Bicubic: {
      constexpr double a = -0.5;
      if (x < 0.0) x = -x;
      if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0;
    }
  }
  return 0.0;
}

double filter_support(PilFilter filter) {
  switch (filter) {
    case PilFilter::Box: return 0.5;
    case PilFilter::Bilinear: return 1.0;
    case PilFilter::Bicubic: return 2.0;
  }
  return 0.0;
}

// One axis' taps: for output i, input [first[i], first[i] + count[i]) with weights[i * ksize + k].
struct Taps {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> weights;
};

Taps pil_taps(int64_t in_size, int64_t out_size, PilFilter filter) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = filter_support(filter) * filterscale;
  Taps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<size_t>(out_size));
  t.count.resize(static_cast<size_t>(out_size));
  t.weights.assign(static_cast<size_t>(out_size * t.ksize), 0);
  std::vector<double> k(static_cast<size_t>(t.ksize));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int64_t xmin = static_cast<int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = static_cast<int64_t>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      const double w = filter_value(filter, (static_cast<double>(x + xmin) - center + 0.5) * ss);
      k[static_cast<size_t>(x)] = w;
      ww += w;
    }
    for (int64_t x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[static_cast<size_t>(x)] / ww : k[static_cast<size_t>(x)];
      t.weights[static_cast<size_t>(xx * t.ksize + x)] =
          static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    t.first[static_cast<size_t>(xx)] = xmin;
    t.count[static_cast<size_t>(xx)] = xmax;
  }
  return t;
}

uint8_t clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

// One pass along one axis of an image seen through strides: output element (line, i, c) from input elements
// (line, taps of i, c). `line_stride` / `step` are the input's strides across and along the axis.
struct Plane {
  int64_t lines, length, channels;
  int64_t line_stride, step;  // in elements
};

std::vector<uint8_t> resample_axis(const uint8_t* src, const Plane& in, const Taps& taps, int64_t out_length, bool along_rows) {
  // The output is laid out as the input is: rows of pixels. along_rows: the pass changes the width.
  std::vector<uint8_t> out(static_cast<size_t>(in.lines * out_length * in.channels));
  for (int64_t line = 0; line < in.lines; ++line)
    for (int64_t i = 0; i < out_length; ++i) {
      const int32_t* k = &taps.weights[static_cast<size_t>(i * taps.ksize)];
      const int64_t first = taps.first[static_cast<size_t>(i)], count = taps.count[static_cast<size_t>(i)];
      for (int64_t c = 0; c < in.channels; ++c) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (int64_t j = 0; j < count; ++j) acc += src[line * in.line_stride + (first + j) * in.step + c] * k[j];
        const int64_t at = along_rows ? (line * out_length + i) * in.channels + c : (i * in.lines + line) * in.channels + c;
        out[static_cast<size_t>(at)] = clip8(acc);
      }
    }
  return out;
}

// Width pass: every row; height pass: every column.
std::vector<uint8_t> resize_width(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t out_w, PilFilter filter) {
  return resample_axis(src, Plane{h, w, c, w * c, c}, pil_taps(w, out_w, filter), out_w, true);
}
std::vector<uint8_t> resize_height(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t out_h, PilFilter filter) {
  return resample_axis(src, Plane{w, h, c, c, w * c}, pil_taps(h, out_h, filter), out_h, false);
}

}  // namespace

std::vector<uint8_t> pil_resize(const uint8_t* pixels, int64_t height, int64_t width, int64_t channels, int64_t out_height,
                                int64_t out_width, PilFilter filter) {
  if (height < 1 || width < 1 || channels < 1 || out_height < 1 || out_width < 1)
    throw internal_error("pil_resize: sizes must be positive");
  std::vector<uint8_t> image(pixels, pixels + height * width * channels);
  // Pillow 13.0 (the reference environment's) runs the vertical pass first when it shrinks the image and
  // removes more than twice as many rows as the horizontal pass removes columns; Pillow 9.4 always ran the
  // horizontal one first. The rule was found by comparing Pillow 13.0's one-call resize with both orders of
  // two one-axis resizes: it held on every one of 396 random shapes (from 8 to 220 pixels a side, up and down).
  const bool vertical_first = out_height < height && height - out_height > 2 * (width - out_width);
  auto width_pass = [&] {
    if (out_width == width) return;
    image = resize_width(image.data(), height, width, channels, out_width, filter);
    width = out_width;
  };
  auto height_pass = [&] {
    if (out_height == height) return;
    image = resize_height(image.data(), height, width, channels, out_height, filter);
    height = out_height;
  };
  if (vertical_first) {
    height_pass();
    width_pass();
  } else {
    width_pass();
    height_pass();
  }
  return image;
}

}  // namespace asg
