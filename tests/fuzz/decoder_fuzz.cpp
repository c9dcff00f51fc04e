// A seeded mutation fuzzer for the sticker decoders (GIF through giflib, WebP through libwebp, PNG, JPEG
// and BMP through OpenCV's codecs, MP4 through OpenCV's FFmpeg backend, and the format detection in front
// of them). Seeds are valid stickers written by our own encoders; each round
// mutates one (bit flips, byte overwrites with interesting values, insertions, deletions, truncation,
// duplicated runs, header fields set to extremes) and decodes it through asg::read_sticker with small
// limits. The only acceptable outcomes are a decoded sticker or an asg::Error: anything else (another
// exception, a crash, a sanitizer report) is a bug. Deterministic for a given --seed.
//
//   asg_decoder_fuzz [--iterations N] [--seed S] [--keep DIR]
// --keep writes every input that escaped as something other than asg::Error to DIR.
// ctest runs it briefly (label fuzz); run it longer by hand, ideally in the sanitizer build:
//   build-asan/tests/asg_decoder_fuzz --iterations 200000
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "asg/error.h"
#include "asg/media/sticker_file.h"
#include "asg/media/transform.h"
#include "test_animation.h"
#include "webp_reference.h"

namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(bytes.data()),
                                                             static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> mutate(std::vector<uint8_t> b, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  static const uint8_t kInteresting[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x10, 0x3B, 0x21, 0x2C, 0xF9};
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !b.empty(); ++e) {
    switch (rng() % 7) {
      case 0: b[pick(b.size())] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
      case 1: b[pick(b.size())] = kInteresting[pick(sizeof(kInteresting))]; break;
      case 2: b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size() + 1)), static_cast<uint8_t>(rng())); break;
      case 3: b.erase(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size()))); break;
      case 4: b.resize(pick(b.size())); break;
      case 5: {  // duplicate a run
        const size_t at = pick(b.size()), len = 1 + pick(std::min<size_t>(64, b.size() - at));
        std::vector<uint8_t> run(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + len));
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pick(b.size() + 1)), run.begin(), run.end());
        break;
      }
      default:  // a 16-bit little-endian field (sizes, offsets, chunk lengths) set to an extreme
        if (b.size() >= 2) {
          const size_t at = pick(b.size() - 1);
          const uint16_t v = rng() % 2 ? 0xFFFF : 0;
          b[at] = static_cast<uint8_t>(v & 0xff);
          b[at + 1] = static_cast<uint8_t>(v >> 8);
        }
    }
  }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  long iterations = 2000;
  unsigned long seed = 1;
  fs::path keep;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) iterations = std::stol(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::stoul(argv[++i]);
    else if (a == "--keep" && i + 1 < argc) keep = argv[++i];
    else {
      fmt::print(stderr, "usage: {} [--iterations N] [--seed S] [--keep DIR]\n", argv[0]);
      return 2;
    }
  }
  const fs::path dir = fs::temp_directory_path() / fmt::format("asg-decoder-fuzz-{}", getpid());
  fs::create_directories(dir);
  // Seeds: GIFs (exact palette and quantised), WebPs (lossless and lossy, animated and static).
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds;
  asg::write_gif(dir / "a.gif", asg::testing::test_animation(5, 3, 3, true));
  asg::write_gif(dir / "b.gif", asg::testing::test_animation(9, 9, 2, true));
  asg::write_webp(dir / "a.webp", asg::testing::test_animation(5, 3, 3));
  asg::write_webp(dir / "b.webp", asg::testing::test_animation(8, 8, 1), /*lossless=*/false, 60);
  asg::write_webp(dir / "c.webp", asg::testing::test_animation(7, 4, 4, true), /*lossless=*/false, 30);
  {
    // A small opaque square moving over a transparent canvas: the encoder writes sub-rectangles that
    // are disposed to the background (keyframes), the structure real transparent stickers have.
    asg::Animation moving;
    moving.width = moving.height = 12;
    for (int t = 0; t < 5; ++t) {
      asg::RgbaFrame f;
      f.rgba.assign(12 * 12 * 4, 0);
      for (int y = 2; y < 6; ++y)
        for (int x = 2 * t; x < 2 * t + 3; ++x)
          for (int c = 0; c < 4; ++c) f.rgba[(static_cast<size_t>(y) * 12 + x) * 4 + c] = static_cast<uint8_t>(c == 3 ? 255 : 40 * t + 60 * c);
      moving.frames.push_back(std::move(f));
    }
    asg::write_webp(dir / "d.webp", moving);
  }
  // Stills through OpenCV's encoders, and a short MP4 through its FFmpeg writer (when it has one).
  const auto still = asg::testing::test_animation(6, 5, 1);
  cv::Mat rgba(5, 6, CV_8UC4, const_cast<uint8_t*>(still.frames[0].rgba.data())), bgra, bgr;
  cv::cvtColor(rgba, bgra, cv::COLOR_RGBA2BGRA);
  cv::cvtColor(rgba, bgr, cv::COLOR_RGBA2BGR);
  cv::imwrite((dir / "a.png").string(), bgra);
  cv::imwrite((dir / "a.jpg").string(), bgr);
  cv::imwrite((dir / "a.bmp").string(), bgr);
  std::vector<const char*> names{"a.gif", "b.gif", "a.webp", "b.webp", "c.webp", "d.webp", "a.png", "a.jpg", "a.bmp"};
  {
    cv::VideoWriter video((dir / "a.mp4").string(), cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), 5.0, cv::Size(16, 16));
    if (video.isOpened()) {
      for (int t = 0; t < 3; ++t) video.write(cv::Mat(16, 16, CV_8UC3, cv::Scalar(60 * t, 100, 200 - 50 * t)));
      names.push_back("a.mp4");
    }
  }
  for (const char* name : names) seeds.emplace_back(name, read_all(dir / name));

  // Small limits, so a mutated size field cannot make a round take seconds.
  const asg::DecodeLimits limits{128 * 128, 64, 8 << 20};
  std::mt19937_64 rng(seed);
  long decoded = 0, refused = 0, escaped = 0;
  for (long i = 0; i < iterations; ++i) {
    const auto& [name, bytes] = seeds[static_cast<size_t>(rng() % seeds.size())];
    const std::vector<uint8_t> input = mutate(bytes, rng);
    const fs::path file = dir / ("input" + fs::path(name).extension().string());
    write_all(file, input);
    try {
      // Half from the file, half from memory (how tar members are decoded).
      asg::DecodedSticker s = i % 2 ? asg::read_sticker(file, limits) : asg::decode_sticker(input, file.string(), limits);
      for (const auto& f : s.animation.frames)
        if (f.rgba.size() != static_cast<size_t>(s.animation.width) * s.animation.height * 4)
          throw std::logic_error("a frame whose size does not match the canvas");
      // Decoding only the frames a sample needs must give the sample full decoding gives (mutations
      // reach every disposal and blend mode).
      if (s.format == asg::MediaFormat::Gif || s.format == asg::MediaFormat::WebP) {
        asg::SampleTransform t;
        t.frames = 3;
        t.height = t.width = 8;
        if (asg::load_sample(input, file.string(), limits, t, 1).rgba != asg::make_sample(s.animation, t, 1).rgba)
          throw std::logic_error("load_sample differs from make_sample on a decodable sticker");
      }
      // Our WebP compositor against libwebp's: a file both decode gives the same frames.
      if (s.format == asg::MediaFormat::WebP) {
        const auto reference = asg::testing::webp_reference_decode(input);
        if (reference && reference->frames.size() != s.animation.frames.size())
          throw std::logic_error("a WebP frame count differs from WebPAnimDecoder's");
        for (size_t f = 0; reference && f < reference->frames.size(); ++f)
          if (reference->frames[f].rgba != s.animation.frames[f].rgba ||
              reference->frames[f].duration_ms != s.animation.frames[f].duration_ms)
            throw std::logic_error(fmt::format("WebP frame {} differs from WebPAnimDecoder's", f));
      }
      ++decoded;
    } catch (const asg::Error&) {
      ++refused;
    } catch (const std::exception& e) {
      ++escaped;
      fmt::print(stderr, "iteration {} (seed {} from {}): escaped as {}\n", i, seed, name, e.what());
      if (!keep.empty()) {
        fs::create_directories(keep);
        write_all(keep / fmt::format("escaped_{}_{}{}", seed, i, fs::path(name).extension().string()), input);
      }
    }
  }
  fs::remove_all(dir);
  fmt::print("{} inputs: {} decoded, {} refused with asg::Error, {} escaped\n", iterations, decoded, refused, escaped);
  return escaped == 0 ? 0 : 1;
}
