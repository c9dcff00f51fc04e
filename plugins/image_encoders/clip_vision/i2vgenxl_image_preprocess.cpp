#include "i2vgenxl_image_preprocess.h"

#include <cmath>

#include "asg/media/pil_resize.h"

namespace asg::image_encoders {

namespace {

// Python's float floor division a // b (Objects/floatobject.c): through fmod, so it can differ from
// floor(a / b) where a / b rounds up to a whole number.
double python_floordiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0.0) return std::copysign(0.0, a / b);
  double floored = std::floor(div);
  if (div - floored > 0.5) floored += 1.0;
  return floored;
}

// Python's floor division of integers.
int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// PIL's Image.crop: the box may reach outside the image, which reads as zeros there.
torch::Tensor pil_crop(const torch::Tensor& rgb, int64_t left, int64_t top, int64_t width, int64_t height) {
  auto out = torch::zeros({height, width, 3}, torch::kUInt8);
  const int64_t h = rgb.size(0), w = rgb.size(1);
  const int64_t y0 = std::max<int64_t>(top, 0), y1 = std::min(top + height, h);
  const int64_t x0 = std::max<int64_t>(left, 0), x1 = std::min(left + width, w);
  if (y1 > y0 && x1 > x0) out.slice(0, y0 - top, y1 - top).slice(1, x0 - left, x1 - left).copy_(rgb.slice(0, y0, y1).slice(1, x0, x1));
  return out;
}

torch::Tensor resize(const torch::Tensor& rgb, int64_t out_h, int64_t out_w, PilFilter filter) {
  const int64_t h = rgb.size(0), w = rgb.size(1);
  if (out_h == h && out_w == w) return rgb;  // Pillow returns a copy
  const auto in = rgb.contiguous();
  auto pixels = pil_resize(in.data_ptr<uint8_t>(), h, w, 3, out_h, out_w, filter);
  return torch::from_blob(pixels.data(), {out_h, out_w, 3}, torch::kUInt8).clone();
}

}  // namespace

torch::Tensor frame_to_rgb8(const torch::Tensor& frame, const std::array<double, 3>& background) {
  auto premultiplied = ((frame.to(torch::kCPU, torch::kFloat32) + 1) * 0.5).clamp(0, 1);  // [4, H, W]
  auto alpha = premultiplied.narrow(0, 3, 1);
  auto bg = torch::tensor({background[0], background[1], background[2]}, torch::kFloat32).view({3, 1, 1});
  auto rgb = premultiplied.narrow(0, 0, 3) + bg * (1 - alpha);
  // As VaeImageProcessor.numpy_to_pil makes a picture of [0, 1] values: (x * 255).round().
  return (rgb.clamp(0, 1) * 255).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
}

torch::Tensor i2vgenxl_image_pixels(const torch::Tensor& frame, const std::array<double, 3>& background, int64_t size) {
  auto rgb = frame_to_rgb8(frame, background);
  const int64_t h = rgb.size(0), w = rgb.size(1);
  // _center_crop_wide(image, (width, width)), the pipeline's width being the frame's.
  const double scale = std::min(static_cast<double>(w) / static_cast<double>(w), static_cast<double>(h) / static_cast<double>(w));
  const auto new_w = static_cast<int64_t>(std::nearbyint(python_floordiv(static_cast<double>(w), scale)));
  const auto new_h = static_cast<int64_t>(std::nearbyint(python_floordiv(static_cast<double>(h), scale)));
  rgb = resize(rgb, new_h, new_w, PilFilter::Box);
  rgb = pil_crop(rgb, floor_div(new_w - w, 2), floor_div(new_h - w, 2), w, w);
  // _resize_bilinear to the feature extractor's crop size.
  rgb = resize(rgb, size, size, PilFilter::Bilinear);
  auto x = rgb.permute({2, 0, 1}).to(torch::kFloat32) / 255.0;
  const auto mean = torch::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({3, 1, 1});
  const auto std = torch::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({3, 1, 1});
  return ((x - mean) / std).contiguous();
}

}  // namespace asg::image_encoders
