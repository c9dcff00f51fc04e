#include "asg/media/gif.h"

#include <fmt/format.h>
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "asg/error.h"

namespace asg {

namespace {

constexpr int kTransparentIndex = 255;

std::string gif_error(int code) {
  const char* s = GifErrorString(code);
  return s ? s : fmt::format("giflib error {}", code);
}

// Palette indices for one frame plus its 256-entry colour map.
struct IndexedFrame {
  std::vector<GifByteType> indices;
  std::vector<GifColorType> palette;  // 256 entries
};

IndexedFrame index_frame(const RgbaFrame& frame, int width, int height) {
  const size_t n = static_cast<size_t>(width) * height;
  IndexedFrame out;
  out.indices.assign(n, kTransparentIndex);
  out.palette.assign(256, GifColorType{0, 0, 0});

  std::map<uint32_t, int> exact;
  bool fits = true;
  for (size_t i = 0; i < n && fits; ++i) {
    const uint8_t* p = &frame.rgba[i * 4];
    if (p[3] < 128) continue;
    uint32_t key = (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2];
    if (!exact.count(key)) {
      if (exact.size() == kTransparentIndex) fits = false;
      else exact.emplace(key, static_cast<int>(exact.size()));
    }
  }
  if (fits) {
    for (const auto& [key, idx] : exact)
      out.palette[idx] = GifColorType{GifByteType(key >> 16), GifByteType((key >> 8) & 0xff), GifByteType(key & 0xff)};
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &frame.rgba[i * 4];
      if (p[3] < 128) continue;
      out.indices[i] = static_cast<GifByteType>(exact[(uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2]]);
    }
    return out;
  }
  // Too many colours: median cut to at most 255 colours, then punch the transparent pixels back in.
  std::vector<GifByteType> r(n), g(n), b(n), q(n);
  for (size_t i = 0; i < n; ++i) {
    r[i] = frame.rgba[i * 4];
    g[i] = frame.rgba[i * 4 + 1];
    b[i] = frame.rgba[i * 4 + 2];
  }
  int size = 128;  // giflib's quantizer wants a power of two; 128 leaves room for the transparent index
  std::vector<GifColorType> map(256);
  if (GifQuantizeBuffer(width, height, &size, r.data(), g.data(), b.data(), q.data(), map.data()) == GIF_ERROR)
    throw internal_error("giflib could not quantize a frame");
  std::copy(map.begin(), map.begin() + size, out.palette.begin());
  for (size_t i = 0; i < n; ++i)
    if (frame.rgba[i * 4 + 3] >= 128) out.indices[i] = q[i];
  return out;
}

struct GifWriterCloser {
  void operator()(GifFileType* g) const {
    if (g) {
      int err = 0;
      EGifCloseFile(g, &err);
    }
  }
};

}  // namespace

void write_gif(const std::filesystem::path& path, const Animation& anim) {
  const std::string file = path.string();
  if (anim.frames.empty()) throw data_error(fmt::format("{}: cannot write a GIF with no frames", file));
  if (anim.width <= 0 || anim.height <= 0 || anim.width > 65535 || anim.height > 65535)
    throw data_error(fmt::format("{}: invalid GIF size {}x{}", file, anim.width, anim.height));
  const size_t expect = static_cast<size_t>(anim.width) * anim.height * 4;
  for (size_t i = 0; i < anim.frames.size(); ++i)
    if (anim.frames[i].rgba.size() != expect)
      throw internal_error(fmt::format("{}: frame {} has {} bytes, expected {}", file, i, anim.frames[i].rgba.size(), expect));

  int err = 0;
  GifFileType* raw = EGifOpenFileName(file.c_str(), false, &err);
  if (!raw) throw data_error(fmt::format("{}: cannot create GIF: {}", file, gif_error(err)));
  std::unique_ptr<GifFileType, GifWriterCloser> gif(raw);
  gif->SWidth = anim.width;
  gif->SHeight = anim.height;
  gif->SColorResolution = 8;
  gif->SBackGroundColor = 0;
  gif->SColorMap = nullptr;

  if (anim.loop_count >= 0) {
    const unsigned char netscape[] = "NETSCAPE2.0";
    unsigned char loop[3] = {1, static_cast<unsigned char>(anim.loop_count & 0xff),
                             static_cast<unsigned char>((anim.loop_count >> 8) & 0xff)};
    if (GifAddExtensionBlock(&gif->ExtensionBlockCount, &gif->ExtensionBlocks, APPLICATION_EXT_FUNC_CODE, 11,
                             const_cast<unsigned char*>(netscape)) == GIF_ERROR ||
        GifAddExtensionBlock(&gif->ExtensionBlockCount, &gif->ExtensionBlocks, CONTINUE_EXT_FUNC_CODE, 3, loop) == GIF_ERROR)
      throw internal_error("giflib: cannot add loop extension");
  }

  for (size_t i = 0; i < anim.frames.size(); ++i) {
    IndexedFrame indexed = index_frame(anim.frames[i], anim.width, anim.height);
    SavedImage* image = GifMakeSavedImage(gif.get(), nullptr);
    if (!image) throw internal_error("giflib: out of memory");
    image->ImageDesc.Left = 0;
    image->ImageDesc.Top = 0;
    image->ImageDesc.Width = anim.width;
    image->ImageDesc.Height = anim.height;
    image->ImageDesc.Interlace = false;
    image->ImageDesc.ColorMap = GifMakeMapObject(256, indexed.palette.data());
    image->RasterBits = static_cast<GifByteType*>(malloc(indexed.indices.size()));
    if (!image->ImageDesc.ColorMap || !image->RasterBits) throw internal_error("giflib: out of memory");
    std::memcpy(image->RasterBits, indexed.indices.data(), indexed.indices.size());
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = DISPOSE_BACKGROUND;
    gcb.UserInputFlag = false;
    gcb.DelayTime = std::max(1, (anim.frames[i].duration_ms + 5) / 10);
    gcb.TransparentColor = kTransparentIndex;
    EGifGCBToSavedExtension(&gcb, gif.get(), static_cast<int>(i));
  }
  if (EGifSpew(gif.get()) == GIF_ERROR) {
    err = gif->Error;
    gif.release();  // EGifSpew closes the file even on failure
    throw data_error(fmt::format("{}: cannot write GIF: {}", file, gif_error(err)));
  }
  gif.release();  // EGifSpew closed and freed it
}

Animation read_gif(const std::filesystem::path& path, const DecodeLimits& limits) {
  const std::string file = path.string();
  int err = 0;
  GifFileType* gif = DGifOpenFileName(file.c_str(), &err);
  if (!gif) throw data_error(fmt::format("{}: cannot open GIF: {}", file, gif_error(err)));
  auto close = [&] { DGifCloseFile(gif, &err); };
  // The logical screen is known once the header is read, before any frame is decoded.
  const int64_t screen_pixels = static_cast<int64_t>(gif->SWidth) * gif->SHeight;
  if (gif->SWidth <= 0 || gif->SHeight <= 0 || screen_pixels > limits.max_canvas_pixels) {
    const int w = gif->SWidth, h = gif->SHeight;
    close();
    throw data_error(fmt::format("{}: the canvas is {}x{}; valid: at least 1x1 and at most {} pixels (data.max_canvas_pixels)",
                                 file, w, h, limits.max_canvas_pixels));
  }
  if (DGifSlurp(gif) == GIF_ERROR) {
    std::string msg = gif_error(gif->Error);
    close();
    throw data_error(fmt::format("{}: malformed GIF: {}", file, msg));
  }
  Animation anim;
  anim.width = gif->SWidth;
  anim.height = gif->SHeight;
  anim.loop_count = -1;
  for (int i = 0; i + 1 < gif->ExtensionBlockCount; ++i) {
    const ExtensionBlock& b = gif->ExtensionBlocks[i];
    if (b.Function == APPLICATION_EXT_FUNC_CODE && b.ByteCount == 11 && std::memcmp(b.Bytes, "NETSCAPE2.0", 11) == 0) {
      const ExtensionBlock& c = gif->ExtensionBlocks[i + 1];
      if (c.ByteCount >= 3) anim.loop_count = c.Bytes[1] | (c.Bytes[2] << 8);
    }
  }
  const size_t canvas_bytes = static_cast<size_t>(anim.width) * anim.height * 4;
  if (gif->ImageCount > limits.max_frames) {
    const int frames = gif->ImageCount;
    close();
    throw data_error(fmt::format("{}: {} frames, over the limit of {} (data.max_frames)", file, frames, limits.max_frames));
  }
  if (static_cast<int64_t>(gif->ImageCount) * static_cast<int64_t>(canvas_bytes) > limits.max_decoded_bytes) {
    const int frames = gif->ImageCount;
    close();
    throw data_error(fmt::format("{}: {} frames of {}x{} RGBA need {} bytes, over the limit of {} (data.max_decoded_bytes)",
                                 file, frames, anim.width, anim.height, static_cast<int64_t>(frames) * canvas_bytes,
                                 limits.max_decoded_bytes));
  }
  std::vector<uint8_t> canvas(canvas_bytes, 0);
  for (int i = 0; i < gif->ImageCount; ++i) {
    const SavedImage& img = gif->SavedImages[i];
    GraphicsControlBlock gcb{};
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    DGifSavedExtensionToGCB(gif, i, &gcb);
    const ColorMapObject* map = img.ImageDesc.ColorMap ? img.ImageDesc.ColorMap : gif->SColorMap;
    if (!map) {
      close();
      throw data_error(fmt::format("{}: frame {} has no colour map", file, i));
    }
    std::vector<uint8_t> before = canvas;
    const auto& d = img.ImageDesc;
    for (int y = 0; y < d.Height; ++y) {
      for (int x = 0; x < d.Width; ++x) {
        int cx = d.Left + x, cy = d.Top + y;
        if (cx < 0 || cy < 0 || cx >= anim.width || cy >= anim.height) continue;
        int idx = img.RasterBits[y * d.Width + x];
        if (idx == gcb.TransparentColor || idx >= map->ColorCount) continue;
        uint8_t* p = &canvas[(static_cast<size_t>(cy) * anim.width + cx) * 4];
        p[0] = map->Colors[idx].Red;
        p[1] = map->Colors[idx].Green;
        p[2] = map->Colors[idx].Blue;
        p[3] = 255;
      }
    }
    anim.frames.push_back(RgbaFrame{canvas, gcb.DelayTime * 10});
    if (gcb.DisposalMode == DISPOSE_BACKGROUND) {
      for (int y = std::max(0, d.Top); y < std::min(anim.height, d.Top + d.Height); ++y)
        for (int x = std::max(0, d.Left); x < std::min(anim.width, d.Left + d.Width); ++x)
          std::memset(&canvas[(static_cast<size_t>(y) * anim.width + x) * 4], 0, 4);
    } else if (gcb.DisposalMode == DISPOSE_PREVIOUS) {
      canvas = std::move(before);
    }
  }
  close();
  if (anim.frames.empty()) throw data_error(fmt::format("{}: GIF has no frames", file));
  return anim;
}

}  // namespace asg
