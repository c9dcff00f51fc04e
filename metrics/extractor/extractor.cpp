#include "extractor.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "asg/error.h"
#include "asg/media/alpha.h"
#include "asg/nn/torchscript.h"

namespace asg::metrics {

TorchScriptExtractor::TorchScriptExtractor(const std::filesystem::path& file, const std::string& sha256, std::string what,
                                           std::string interface, std::map<std::string, bool> keyword_arguments,
                                           torch::Device device)
    : file_(file),
      what_(std::move(what)),
      interface_(std::move(interface)),
      keyword_arguments_(std::move(keyword_arguments)),
      device_(device),
      module_(load_torchscript(file, sha256, what_, interface_)) {
  std::vector<std::string> missing;
  try {
    const auto& schema = module_.get_method("forward").function().getSchema();
    for (const auto& [name, value] : keyword_arguments_) {
      bool found = false;
      for (const auto& argument : schema.arguments()) found = found || argument.name() == name;
      if (!found) missing.push_back(name);
    }
  } catch (const c10::Error&) {
    missing.push_back("forward");
  }
  if (!missing.empty()) {
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    throw config_error(fmt::format("{}: its forward() has no argument {}: not the {} interface ({})", file_.string(), names,
                                   what_, interface_));
  }
  module_.eval();
  module_.to(device_);
}

namespace {
// The line of an exception from TorchScript that says what went wrong: the interpreter puts a traceback
// first and the error ("RuntimeError: ...") last.
std::string reason_of(const std::string& message) {
  const auto at = message.rfind("Error: ");
  if (at != std::string::npos) {
    const auto start = message.rfind('\n', at);
    const std::string line = message.substr(start == std::string::npos ? 0 : start + 1);
    return line.substr(0, line.find('\n'));
  }
  return message.substr(0, message.find('\n'));
}
}  // namespace

torch::Tensor TorchScriptExtractor::features(const torch::Tensor& input, int64_t batch_size) {
  c10::InferenceMode inference;
  std::vector<torch::Tensor> out;
  torch::jit::Kwargs kwargs;
  for (const auto& [name, value] : keyword_arguments_) kwargs[name] = value;
  auto method = module_.get_method("forward");
  for (int64_t start = 0; start < input.size(0); start += batch_size) {
    const auto chunk = input.slice(0, start, std::min(input.size(0), start + batch_size)).to(device_);
    torch::Tensor f;
    try {
      f = method({chunk}, kwargs).toTensor();
    } catch (const std::exception& e) {  // c10::Error, or torch::jit::JITException from the script itself
      const c10::Error* c10_error = dynamic_cast<const c10::Error*>(&e);
      const std::string message = c10_error ? c10_error->what_without_backtrace() : e.what();
      throw config_error(fmt::format("{}: the {} failed on input {}: {} (expected: {})", file_.string(), what_,
                                     c10::str(chunk.sizes()), reason_of(message), interface_));
    }
    if (f.dim() != 2 || f.size(0) != chunk.size(0) || (dim_ >= 0 && f.size(1) != dim_))
      throw config_error(fmt::format("{}: the {} returned {} for input {}; expected features [{}, d] (expected: {})",
                                     file_.string(), what_, c10::str(f.sizes()), c10::str(chunk.sizes()), chunk.size(0),
                                     interface_));
    dim_ = f.size(1);
    out.push_back(f.to(torch::kCPU).to(torch::kFloat64));
  }
  return torch::cat(out);
}

torch::Tensor protocol_video(const torch::Tensor& clip, int64_t valid_frames, int64_t frames, int64_t stride,
                             const std::array<double, 3>& background) {
  const int64_t valid = std::max<int64_t>(1, std::min(valid_frames, clip.size(0)));
  std::vector<int64_t> index(static_cast<size_t>(frames));
  for (int64_t j = 0; j < frames; ++j) index[static_cast<size_t>(j)] = (j * stride) % valid;
  const auto picked = clip.index_select(0, torch::tensor(index, torch::kLong));  // [F, 4, H, W]
  auto rgb = composite_over(picked.to(torch::kFloat32), 1, background);          // [F, 3, H, W] in [0, 1]
  return (rgb * 255).round().clamp(0, 255).permute({1, 0, 2, 3}).contiguous();    // [3, F, H, W]
}



namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // Pillow's PRECISION_BITS for 8-bit images

double pil_bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// One axis' taps: for output i, input [first[i], first[i] + count[i]) with weights[i * ksize + k].
struct Taps {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> weights;
};

Taps pil_taps(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 2.0 * filterscale;
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
      const double w = pil_bicubic((static_cast<double>(x + xmin) - center + 0.5) * ss);
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

}  // namespace

namespace {

// Both passes, the horizontal one first (each rounds to uint8, so the order shows in the last bit).
torch::Tensor resize_horizontal_first(const torch::Tensor& image, int64_t out_h, int64_t out_w) {
  const auto in = image.contiguous();
  const int64_t in_h = in.size(0), in_w = in.size(1);
  const uint8_t* src = in.data_ptr<uint8_t>();
  // Horizontal pass (when the width changes), over the rows the vertical pass reads, as Pillow does.
  const Taps vertical = pil_taps(in_h, out_h);
  const int64_t row_first = vertical.first.front();
  const int64_t row_last = vertical.first.back() + vertical.count.back();
  std::vector<uint8_t> rows;
  int64_t rows_w = in_w, row_offset = 0;
  const uint8_t* rows_src = src;
  if (out_w != in_w) {
    const Taps horizontal = pil_taps(in_w, out_w);
    rows.resize(static_cast<size_t>((row_last - row_first) * out_w * 3));
    for (int64_t y = row_first; y < row_last; ++y)
      for (int64_t xx = 0; xx < out_w; ++xx) {
        const int32_t* k = &horizontal.weights[static_cast<size_t>(xx * horizontal.ksize)];
        int32_t acc[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1)};
        for (int64_t x = 0; x < horizontal.count[static_cast<size_t>(xx)]; ++x) {
          const uint8_t* p = src + (y * in_w + horizontal.first[static_cast<size_t>(xx)] + x) * 3;
          for (int c = 0; c < 3; ++c) acc[c] += p[c] * k[x];
        }
        for (int c = 0; c < 3; ++c) rows[static_cast<size_t>(((y - row_first) * out_w + xx) * 3 + c)] = clip8(acc[c]);
      }
    rows_w = out_w;
    row_offset = row_first;
    rows_src = rows.data();
  }
  auto out = torch::empty({out_h, out_w, 3}, torch::kUInt8);
  uint8_t* dst = out.data_ptr<uint8_t>();
  if (out_h == in_h) {
    std::memcpy(dst, rows_src + 0, static_cast<size_t>(out_h * out_w * 3));
    return out;
  }
  for (int64_t yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &vertical.weights[static_cast<size_t>(yy * vertical.ksize)];
    const int64_t y0 = vertical.first[static_cast<size_t>(yy)] - row_offset;
    for (int64_t xx = 0; xx < out_w; ++xx) {
      int32_t acc[3] = {1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1), 1 << (kPrecisionBits - 1)};
      for (int64_t y = 0; y < vertical.count[static_cast<size_t>(yy)]; ++y) {
        const uint8_t* p = rows_src + ((y0 + y) * rows_w + xx) * 3;
        for (int c = 0; c < 3; ++c) acc[c] += p[c] * k[y];
      }
      for (int c = 0; c < 3; ++c) dst[(yy * out_w + xx) * 3 + c] = clip8(acc[c]);
    }
  }
  return out;
}

}  // namespace

torch::Tensor pil_resize_bicubic(const torch::Tensor& image, int64_t out_h, int64_t out_w) {
  if (image.dim() != 3 || image.size(2) != 3 || image.scalar_type() != torch::kUInt8)
    throw internal_error("pil_resize_bicubic: a uint8 [H, W, 3] image is needed");
  // Pillow 13.0 (the reference environment's) runs the vertical pass first when it shrinks the image and
  // removes more than twice as many rows as the horizontal pass removes columns; Pillow 9.4 always ran the
  // horizontal one first. The rule was found by comparing Pillow 13.0's one-call resize with both orders of
  // two one-axis resizes: it held on every one of 396 random shapes (from 8 to 220 pixels a side, up and down),
  // and the fixture's shapes sit on both sides of it. Vertical first is horizontal first on the transpose.
  const int64_t in_h = image.size(0), in_w = image.size(1);
  if (out_h < in_h && in_h - out_h > 2 * (in_w - out_w))
    return resize_horizontal_first(image.transpose(0, 1), out_w, out_h).transpose(0, 1).contiguous();
  return resize_horizontal_first(image, out_h, out_w);
}

torch::Tensor clip_preprocess(const torch::Tensor& frame, int64_t size) {
  const int64_t h = frame.size(0), w = frame.size(1);
  int64_t new_h = size, new_w = size;
  if (w < h) new_h = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(h) / static_cast<double>(w));
  if (h < w) new_w = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(w) / static_cast<double>(h));
  auto resized = (new_h == h && new_w == w) ? frame : pil_resize_bicubic(frame, new_h, new_w);
  const int64_t top = static_cast<int64_t>(std::round((new_h - size) / 2.0));
  const int64_t left = static_cast<int64_t>(std::round((new_w - size) / 2.0));
  auto crop = resized.slice(0, top, top + size).slice(1, left, left + size);
  auto x = crop.permute({2, 0, 1}).to(torch::kFloat32) / 255.0;
  const auto mean = torch::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({3, 1, 1});
  const auto std = torch::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({3, 1, 1});
  return ((x - mean) / std).contiguous();
}

}  // namespace asg::metrics
