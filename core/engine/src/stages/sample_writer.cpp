#include <fmt/format.h>

#include <cctype>
#include <cmath>

#include "asg/media/gif.h"
#include "asg/stages/sample_writer.h"
#include "asg/files.h"

namespace asg {

namespace fs = std::filesystem;

namespace {

// Frames of a straight-RGBA clip [T, 4, H, W] as 8-bit frames, upscaled `scale` times.
Animation to_animation(const torch::Tensor& clip, int32_t duration_ms, int64_t scale) {
  auto u8 = (clip * 255).round().clamp(0, 255).to(torch::kUInt8);  // [T, 4, H, W]
  if (scale > 1) u8 = u8.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
  u8 = u8.permute({0, 2, 3, 1}).contiguous();  // [T, H, W, 4]
  Animation anim;
  anim.height = static_cast<int32_t>(u8.size(1));
  anim.width = static_cast<int32_t>(u8.size(2));
  for (int64_t t = 0; t < u8.size(0); ++t) {
    auto f = u8[t];
    RgbaFrame frame;
    frame.rgba.assign(f.data_ptr<uint8_t>(), f.data_ptr<uint8_t>() + f.numel());
    frame.duration_ms = duration_ms;
    anim.frames.push_back(std::move(frame));
  }
  return anim;
}

// Tiles clips [N, T, 4, H, W] into a grid clip [T, 4, rows*H, cols*W] with 1-pixel transparent gutters.
torch::Tensor tile(const torch::Tensor& clips, int64_t cols) {
  int64_t n = clips.size(0), t = clips.size(1), h = clips.size(3), w = clips.size(4);
  int64_t rows = (n + cols - 1) / cols;
  auto grid = torch::zeros({t, 4, rows * (h + 1), cols * (w + 1)});
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = i / cols, c = i % cols;
    grid.narrow(2, r * (h + 1), h).narrow(3, c * (w + 1), w).copy_(clips[i]);
  }
  return grid;
}

std::string slug(const std::string& caption) {
  std::string out;
  for (char c : caption) {
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(c));
    else if (!out.empty() && out.back() != '-') out += '-';
    if (out.size() >= 48) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "unconditional" : out;
}

constexpr size_t kGridClips = 16;

}  // namespace

SampleWriter::SampleWriter(RunLog& log, int64_t save_gifs, int64_t gif_scale, double fps)
    : log_(log),
      save_gifs_(save_gifs),
      gif_scale_(gif_scale),
      frame_ms_(fps > 0 ? static_cast<int32_t>(std::lround(1000.0 / fps)) : 100) {}

void SampleWriter::add(int64_t index, const torch::Tensor& clip, const std::string& caption) {
  if (index >= save_gifs_) return;
  fs::path gif = log_.output_dir() / "samples" / fmt::format("{:04}_{}.gif", index, slug(caption));
  write_gif(gif, to_animation(clip, frame_ms_, gif_scale_));
  log_.artifact(gif);
  captions_ += fmt::format("{}\t{}\n", gif.filename().string(), caption);
  if (grid_.size() < kGridClips) grid_.push_back(clip);
}

void SampleWriter::finish() {
  if (grid_.empty()) return;
  fs::path grid = log_.output_dir() / "samples" / "grid.gif";
  write_gif(grid, to_animation(tile(torch::stack(grid_), 4), frame_ms_, std::max<int64_t>(1, gif_scale_ / 2)));
  log_.artifact(grid);
  write_text_file_atomic(log_.output_dir() / "samples" / "captions.txt", captions_);
  log_.artifact(log_.output_dir() / "samples" / "captions.txt");
}

}  // namespace asg
