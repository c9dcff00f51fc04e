#include "extractor.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

#include "asg/error.h"
#include "asg/media/alpha.h"
#include "asg/media/pil_resize.h"
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

torch::Tensor clip_preprocess(const torch::Tensor& frame, int64_t size) {
  const int64_t h = frame.size(0), w = frame.size(1);
  int64_t new_h = size, new_w = size;
  if (w < h) new_h = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(h) / static_cast<double>(w));
  if (h < w) new_w = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(w) / static_cast<double>(h));
  torch::Tensor resized = frame;
  if (new_h != h || new_w != w) {
    const auto rgb = frame.contiguous();
    auto pixels = pil_resize(rgb.data_ptr<uint8_t>(), h, w, 3, new_h, new_w, PilFilter::Bicubic);
    resized = torch::from_blob(pixels.data(), {new_h, new_w, 3}, torch::kUInt8).clone();
  }
  const int64_t top = static_cast<int64_t>(std::round((new_h - size) / 2.0));
  const int64_t left = static_cast<int64_t>(std::round((new_w - size) / 2.0));
  auto crop = resized.slice(0, top, top + size).slice(1, left, left + size);
  auto x = crop.permute({2, 0, 1}).to(torch::kFloat32) / 255.0;
  const auto mean = torch::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({3, 1, 1});
  const auto std = torch::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({3, 1, 1});
  return ((x - mean) / std).contiguous();
}

}  // namespace asg::metrics
