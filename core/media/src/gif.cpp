#include "asg/media/gif.h"

#include <fmt/format.h>
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "asg/error.h"
#include "asg/files.h"

namespace asg {

namespace {
struct GifReaderCloser {
  void operator()(GifFileType* gif) const {
    int err = 0;
    DGifCloseFile(gif, &err);
  }
};
}  // namespace

namespace {

constexpr int kTransparentIndex = 255;

std::string gif_error(int code) {
  const char* s = GifErrorString(code);
  return s ? s : fmt::format("giflib error {}", code);
}

// Palette indices for every frame, and the colour maps they index: one for the whole sticker (`shared`)
// or, when only that keeps every colour exact, one per frame.
struct IndexedSticker {
  std::vector<std::vector<GifByteType>> indices;       // per frame, width * height
  std::vector<std::vector<GifColorType>> palettes;     // 256 entries each: one (shared) or one per frame
  bool shared = true;
};

uint32_t rgb_key(const uint8_t* p) { return (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2]; }

// Exact colour maps of at most 255 colours (index 255 is transparency) for `frames`, or nullopt.
std::optional<std::map<uint32_t, int>> exact_colours(const Animation& anim, size_t first, size_t last) {
  std::map<uint32_t, int> exact;
  const size_t n = static_cast<size_t>(anim.width) * anim.height;
  for (size_t f = first; f < last; ++f)
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &anim.frames[f].rgba[i * 4];
      if (p[3] < 128) continue;
      if (exact.emplace(rgb_key(p), static_cast<int>(exact.size())).second && exact.size() > kTransparentIndex) return std::nullopt;
    }
  return exact;
}

std::vector<GifColorType> palette_of(const std::map<uint32_t, int>& exact) {
  std::vector<GifColorType> palette(256, GifColorType{0, 0, 0});
  for (const auto& [key, idx] : exact)
    palette[idx] = GifColorType{GifByteType(key >> 16), GifByteType((key >> 8) & 0xff), GifByteType(key & 0xff)};
  return palette;
}

IndexedSticker index_sticker(const Animation& anim) {
  const size_t n = static_cast<size_t>(anim.width) * anim.height, frames = anim.frames.size();
  IndexedSticker out;
  out.indices.assign(frames, std::vector<GifByteType>(n, kTransparentIndex));
  auto map_exact = [&](size_t f, const std::map<uint32_t, int>& exact) {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &anim.frames[f].rgba[i * 4];
      if (p[3] >= 128) out.indices[f][i] = static_cast<GifByteType>(exact.at(rgb_key(p)));
    }
  };
  // 1. At most 255 colours in the whole sticker: one exact palette.
  if (auto exact = exact_colours(anim, 0, frames)) {
    out.palettes.push_back(palette_of(*exact));
    for (size_t f = 0; f < frames; ++f) map_exact(f, *exact);
    return out;
  }
  // 2. Every frame within 255 colours: exact palettes per frame (lossless beats sharing).
  std::vector<std::map<uint32_t, int>> per_frame;
  for (size_t f = 0; f < frames; ++f) {
    auto exact = exact_colours(anim, f, f + 1);
    if (!exact) break;
    per_frame.push_back(std::move(*exact));
  }
  if (per_frame.size() == frames) {
    out.shared = false;
    for (size_t f = 0; f < frames; ++f) {
      out.palettes.push_back(palette_of(per_frame[f]));
      map_exact(f, per_frame[f]);
    }
    return out;
  }
  // 3. Too many colours: one median-cut palette over the opaque pixels of all frames (giflib's quantizer),
  //    so a colour maps to the same entry in every frame and cannot flicker between them.
  std::vector<GifByteType> r, g, b;
  for (const auto& frame : anim.frames)
    for (size_t i = 0; i < n; ++i)
      if (frame.rgba[i * 4 + 3] >= 128) {
        r.push_back(frame.rgba[i * 4]);
        g.push_back(frame.rgba[i * 4 + 1]);
        b.push_back(frame.rgba[i * 4 + 2]);
      }
  std::vector<GifByteType> q(r.size());
  int size = 128;  // giflib's quantizer wants a power of two; 128 leaves room for the transparent index
  std::vector<GifColorType> map(256);
  if (GifQuantizeBuffer(static_cast<unsigned>(r.size()), 1, &size, r.data(), g.data(), b.data(), q.data(), map.data()) == GIF_ERROR)
    throw internal_error("giflib could not quantize the sticker");
  std::vector<GifColorType> palette(256, GifColorType{0, 0, 0});
  std::copy(map.begin(), map.begin() + size, palette.begin());
  out.palettes.push_back(std::move(palette));
  size_t k = 0;
  for (size_t f = 0; f < frames; ++f)
    for (size_t i = 0; i < n; ++i)
      if (anim.frames[f].rgba[i * 4 + 3] >= 128) out.indices[f][i] = q[k++];
  return out;
}

// giflib writes through this callback into memory; the file is then written atomically, so a failed or
// interrupted write never leaves half a GIF (and no giflib call can fail on a file after the frames are in).
int append_to_string(GifFileType* gif, const GifByteType* bytes, int length) {
  try {
    static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(bytes), static_cast<size_t>(length));
    return length;
  } catch (const std::bad_alloc&) {
    return 0;  // giflib reports E_GIF_ERR_WRITE_FAILED
  }
}

// Owns a GifFileType being written and everything the caller allocated into it. EGifSpew closes and frees
// the GifFileType when it succeeds but leaves it open when it fails; in neither case does giflib free the
// frames (SavedImages with their rasters, colour maps and extension blocks) or the global extension blocks:
// they belong to the caller (giflib 5.x; its own gifbuild/giffix free them the same way).
class GifWriter {
 public:
  explicit GifWriter(GifFileType* gif) : gif_(gif) {}
  GifWriter(const GifWriter&) = delete;
  GifWriter& operator=(const GifWriter&) = delete;
  ~GifWriter() {
    if (gif_) {
      detach_owned();
      int err = 0;
      EGifCloseFile(gif_, &err);
    }
    free_owned();
  }
  GifFileType* operator->() const { return gif_; }
  GifFileType* get() const { return gif_; }

  // EGifSpew, keeping ownership straight whatever it returns. Returns giflib's error code, 0 on success.
  int spew() {
    detach_owned();
    // EGifSpew reads the frames from the struct: put them back for the call.
    gif_->SavedImages = images_.SavedImages;
    gif_->ImageCount = images_.ImageCount;
    gif_->ExtensionBlocks = extensions_;
    gif_->ExtensionBlockCount = extension_count_;
    ColorMapObject* const screen_map = gif_->SColorMap;
    if (EGifSpew(gif_) == GIF_ERROR) {
      const int err = gif_->Error;
      // Still open: the destructor closes it, which frees whatever map the struct now holds.
      if (screen_map && gif_->SColorMap != screen_map) GifFreeMapObject(screen_map);
      return err == 0 ? E_GIF_ERR_WRITE_FAILED : err;
    }
    gif_ = nullptr;  // closed and freed by EGifSpew
#if GIFLIB_MAJOR * 10000 + GIFLIB_MINOR * 100 + GIFLIB_RELEASE <= 50201
    // Up to 5.2.1 (Debian 12) EGifPutScreenDesc replaces SColorMap with a copy and closing frees only the
    // copy; later versions reuse the same map and free it themselves, so freeing it there would be a double free.
    if (screen_map) GifFreeMapObject(screen_map);
#endif
    return 0;
  }

 private:
  // Takes the caller-owned allocations out of the struct so that closing it cannot touch them.
  void detach_owned() {
    if (gif_->SavedImages) {
      images_.SavedImages = gif_->SavedImages;
      images_.ImageCount = gif_->ImageCount;
    }
    if (gif_->ExtensionBlocks) {
      extensions_ = gif_->ExtensionBlocks;
      extension_count_ = gif_->ExtensionBlockCount;
    }
    gif_->SavedImages = nullptr;
    gif_->ImageCount = 0;
    gif_->ExtensionBlocks = nullptr;
    gif_->ExtensionBlockCount = 0;
  }
  void free_owned() {
    if (images_.SavedImages) GifFreeSavedImages(&images_);
    if (extensions_) GifFreeExtensions(&extension_count_, &extensions_);
  }

  GifFileType* gif_;
  GifFileType images_{};  // only SavedImages and ImageCount are used: GifFreeSavedImages takes the struct
  ExtensionBlock* extensions_ = nullptr;
  int extension_count_ = 0;
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

  std::string bytes;
  int err = 0;
  GifFileType* raw = EGifOpen(&bytes, append_to_string, &err);
  if (!raw) throw internal_error(fmt::format("{}: cannot start a GIF: {}", file, gif_error(err)));
  GifWriter gif(raw);
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

  const IndexedSticker indexed = index_sticker(anim);
  if (indexed.shared) {
    gif->SColorMap = GifMakeMapObject(256, indexed.palettes[0].data());
    if (!gif->SColorMap) throw internal_error("giflib: out of memory");
  }
  for (size_t i = 0; i < anim.frames.size(); ++i) {
    SavedImage* image = GifMakeSavedImage(gif.get(), nullptr);
    if (!image) throw internal_error("giflib: out of memory");
    image->ImageDesc.Left = 0;
    image->ImageDesc.Top = 0;
    image->ImageDesc.Width = anim.width;
    image->ImageDesc.Height = anim.height;
    image->ImageDesc.Interlace = false;
    image->ImageDesc.ColorMap = indexed.shared ? nullptr : GifMakeMapObject(256, indexed.palettes[i].data());
    image->RasterBits = static_cast<GifByteType*>(malloc(indexed.indices[i].size()));
    if ((!indexed.shared && !image->ImageDesc.ColorMap) || !image->RasterBits) throw internal_error("giflib: out of memory");
    std::memcpy(image->RasterBits, indexed.indices[i].data(), indexed.indices[i].size());
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = DISPOSE_BACKGROUND;
    gcb.UserInputFlag = false;
    gcb.DelayTime = std::max(1, (anim.frames[i].duration_ms + 5) / 10);
    gcb.TransparentColor = kTransparentIndex;
    if (EGifGCBToSavedExtension(&gcb, gif.get(), static_cast<int>(i)) == GIF_ERROR)
      throw internal_error("giflib: out of memory");
  }
  if (const int spew_error = gif.spew(); spew_error != 0)
    throw internal_error(fmt::format("{}: giflib could not encode the GIF: {}", file, gif_error(spew_error)));
  write_text_file_atomic(path, bytes);
}

namespace {
Animation decode_gif_frames(std::span<const uint8_t> bytes, const std::string& file, const DecodeLimits& limits,
                            const std::vector<bool>* needed, bool timing_only);

// giflib reads through a callback: this one serves the bytes of a file already in memory.
struct MemoryReader {
  std::span<const uint8_t> bytes;
  size_t offset = 0;
};
int read_from_memory(GifFileType* gif, GifByteType* out, int wanted) {
  auto* reader = static_cast<MemoryReader*>(gif->UserData);
  const size_t n = std::min(static_cast<size_t>(std::max(wanted, 0)), reader->bytes.size() - reader->offset);
  std::memcpy(out, reader->bytes.data() + reader->offset, n);
  reader->offset += n;
  return static_cast<int>(n);
}
}  // namespace

Animation read_gif(const std::filesystem::path& path, const DecodeLimits& limits) {
  const std::string data = read_text_file(path);
  return decode_gif({reinterpret_cast<const uint8_t*>(data.data()), data.size()}, path.string(), limits);
}

Animation decode_gif(std::span<const uint8_t> bytes, const std::string& file, const DecodeLimits& limits) {
  return decode_gif_frames(bytes, file, limits, nullptr, false);
}

Animation decode_gif(std::span<const uint8_t> bytes, const std::string& file, const DecodeLimits& limits,
                     const std::vector<bool>& needed) {
  return decode_gif_frames(bytes, file, limits, &needed, false);
}

Animation gif_timing(std::span<const uint8_t> bytes, const std::string& file, const DecodeLimits& limits) {
  return decode_gif_frames(bytes, file, limits, nullptr, true);
}

namespace {
Animation decode_gif_frames(std::span<const uint8_t> bytes, const std::string& file, const DecodeLimits& limits,
                            const std::vector<bool>* needed, bool timing_only) {
  MemoryReader reader{bytes};
  int err = 0;
  GifFileType* raw = DGifOpen(&reader, read_from_memory, &err);
  if (!raw) throw data_error(fmt::format("{}: cannot open GIF: {}", file, gif_error(err)));
  std::unique_ptr<GifFileType, GifReaderCloser> gif(raw);
  auto malformed = [&](const std::string& what) {
    return data_error(fmt::format("{}: malformed GIF: {} ({})", file, what, gif_error(gif->Error)));
  };
  // The logical screen is known once the header is read, before any frame is decoded.
  Animation anim;
  anim.width = gif->SWidth;
  anim.height = gif->SHeight;
  anim.loop_count = -1;
  const int64_t screen_pixels = static_cast<int64_t>(anim.width) * anim.height;
  if (anim.width <= 0 || anim.height <= 0 || screen_pixels > limits.max_canvas_pixels)
    throw data_error(fmt::format("{}: the canvas is {}x{}; valid: at least 1x1 and at most {} pixels (data.max_canvas_pixels)",
                                 file, anim.width, anim.height, limits.max_canvas_pixels));
  const size_t canvas_bytes = static_cast<size_t>(screen_pixels) * 4;

  // Record by record (not DGifSlurp, which decodes every frame before anything can be checked): each
  // limit is checked before the memory it guards is allocated.
  std::vector<uint8_t> canvas(canvas_bytes, 0);
  std::vector<GifByteType> indices;
  GraphicsControlBlock gcb{};  // applies to the next image only
  auto reset_gcb = [&] {
    gcb = GraphicsControlBlock{};
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
  };
  reset_gcb();
  // Disposal to the background: the frame's rectangle (clipped to the screen) cleared to transparent, as
  // browsers do (not to the background colour index).
  auto clear_to_transparent = [&](const GifImageDesc& d) {
    const int x0 = std::max(0, d.Left), x1 = std::min(anim.width, d.Left + d.Width);
    if (x1 <= x0) return;
    for (int y = std::max(0, d.Top); y < std::min(anim.height, d.Top + d.Height); ++y)
      std::memset(&canvas[(static_cast<size_t>(y) * anim.width + x0) * 4], 0, static_cast<size_t>(x1 - x0) * 4);
  };
  GifRecordType record = UNDEFINED_RECORD_TYPE;
  do {
    if (DGifGetRecordType(gif.get(), &record) == GIF_ERROR) {
      // Whole frames followed by nothing: a missing trailer byte, which browsers accept too.
      if (gif->Error == D_GIF_ERR_READ_FAILED && !anim.frames.empty()) break;
      throw malformed("truncated or corrupt record");
    }
    if (record == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif.get(), &code, &block) == GIF_ERROR) throw malformed("corrupt extension");
      bool netscape = false;
      if (block && code == GRAPHICS_EXT_FUNC_CODE && DGifExtensionToGCB(block[0], block + 1, &gcb) == GIF_ERROR)
        throw malformed("corrupt graphics control extension");
      if (block && code == APPLICATION_EXT_FUNC_CODE && block[0] == 11 && std::memcmp(block + 1, "NETSCAPE2.0", 11) == 0)
        netscape = true;
      while (block) {
        if (DGifGetExtensionNext(gif.get(), &block) == GIF_ERROR) throw malformed("corrupt extension");
        if (netscape && block && block[0] >= 3 && block[1] == 1) anim.loop_count = block[2] | (block[3] << 8);
      }
    } else if (record == IMAGE_DESC_RECORD_TYPE) {
      if (DGifGetImageDesc(gif.get()) == GIF_ERROR) throw malformed("corrupt image descriptor");
      const GifImageDesc& d = gif->Image;
      const int64_t frames = static_cast<int64_t>(anim.frames.size()) + 1;
      if (frames > limits.max_frames)
        throw data_error(fmt::format("{}: more than {} frames (data.max_frames)", file, limits.max_frames));
      if (frames > limits.max_decoded_bytes / static_cast<int64_t>(canvas_bytes))  // by division: no overflow
        throw data_error(fmt::format("{}: {} frames of {}x{} RGBA need more than {} bytes (data.max_decoded_bytes)", file,
                                     frames, anim.width, anim.height, limits.max_decoded_bytes));
      const int64_t frame_pixels = static_cast<int64_t>(d.Width) * d.Height;
      if (d.Width <= 0 || d.Height <= 0 || frame_pixels > limits.max_canvas_pixels)
        throw data_error(fmt::format("{}: frame {} is {}x{}; valid: at least 1x1 and at most {} pixels (data.max_canvas_pixels)",
                                     file, frames - 1, d.Width, d.Height, limits.max_canvas_pixels));
      const ColorMapObject* map = d.ColorMap ? d.ColorMap : gif->SColorMap;
      if (!map) throw data_error(fmt::format("{}: frame {} has no colour map (neither its own nor a global one)", file, frames - 1));
      const size_t index = static_cast<size_t>(frames - 1);
      const bool keep = !timing_only && (!needed || (index < needed->size() && (*needed)[index]));
      // A frame nobody needs whose disposal restores what was under it (background, previous) cannot show
      // in any later frame: its compressed data is skipped, not decoded.
      if (timing_only || (!keep && (gcb.DisposalMode == DISPOSE_BACKGROUND || gcb.DisposalMode == DISPOSE_PREVIOUS))) {
        int code_size = 0;
        GifByteType* block = nullptr;
        if (DGifGetCode(gif.get(), &code_size, &block) == GIF_ERROR) throw malformed(fmt::format("frame {} is truncated", index));
        while (block)
          if (DGifGetCodeNext(gif.get(), &block) == GIF_ERROR) throw malformed(fmt::format("frame {} is truncated", index));
        anim.frames.push_back(RgbaFrame{{}, gcb.DelayTime * 10});
        if (!timing_only && gcb.DisposalMode == DISPOSE_BACKGROUND) clear_to_transparent(d);
        reset_gcb();
        continue;
      }
      indices.assign(static_cast<size_t>(frame_pixels), 0);
      // Interlaced images arrive in four passes: every 8th row from 0, every 8th from 4, every 4th from 2,
      // every 2nd from 1.
      static const int kStart[] = {0, 4, 2, 1}, kStep[] = {8, 8, 4, 2};
      for (int pass = 0; pass < (d.Interlace ? 4 : 1); ++pass) {
        const int start = d.Interlace ? kStart[pass] : 0, step = d.Interlace ? kStep[pass] : 1;
        for (int y = start; y < d.Height; y += step)
          if (DGifGetLine(gif.get(), &indices[static_cast<size_t>(y) * d.Width], d.Width) == GIF_ERROR)
            throw malformed(fmt::format("frame {} is truncated", frames - 1));
      }
      std::vector<uint8_t> before;
      if (gcb.DisposalMode == DISPOSE_PREVIOUS) before = canvas;
      // The palette as RGBA; the transparent index and indices past the map draw nothing.
      uint8_t rgba[256][4];
      bool drawn[256];
      for (int i = 0; i < 256; ++i) {
        drawn[i] = i != gcb.TransparentColor && i < map->ColorCount;
        const GifColorType c = drawn[i] ? map->Colors[i] : GifColorType{0, 0, 0};
        rgba[i][0] = c.Red, rgba[i][1] = c.Green, rgba[i][2] = c.Blue, rgba[i][3] = 255;
      }
      // The part of the frame on the screen (frames may reach past it: clipped).
      const int x0 = std::max(0, -d.Left), x1 = std::min(d.Width, anim.width - d.Left);
      const int y0 = std::max(0, -d.Top), y1 = std::min(d.Height, anim.height - d.Top);
      for (int y = y0; y < y1; ++y) {
        const GifByteType* row = &indices[static_cast<size_t>(y) * d.Width];
        uint8_t* out = &canvas[(static_cast<size_t>(d.Top + y) * anim.width + d.Left) * 4];
        for (int x = x0; x < x1; ++x)
          if (drawn[row[x]]) std::memcpy(out + 4 * x, rgba[row[x]], 4);
      }
      anim.frames.push_back(RgbaFrame{keep ? canvas : std::vector<uint8_t>{}, gcb.DelayTime * 10});
      // Disposal: what the canvas is before the next frame is drawn.
      if (gcb.DisposalMode == DISPOSE_BACKGROUND) {
        clear_to_transparent(d);
      } else if (gcb.DisposalMode == DISPOSE_PREVIOUS) {
        canvas = std::move(before);
      }
      reset_gcb();
    }
  } while (record != TERMINATE_RECORD_TYPE);
  if (anim.frames.empty()) throw data_error(fmt::format("{}: GIF has no frames", file));
  return anim;
}
}  // namespace

}  // namespace asg
