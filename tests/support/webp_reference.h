// libwebp's own compositor (WebPAnimDecoder) as the reference that asg::decode_webp is checked against,
// frame for frame, by the WebP decoding test and the decoder fuzzer. No torch.
#pragma once

#include <webp/demux.h>

#include <optional>
#include <span>

#include "asg/media/gif.h"

namespace asg::testing {

// Every frame, straight RGBA, durations from the timestamps; nullopt when libwebp refuses the file.
inline std::optional<Animation> webp_reference_decode(std::span<const uint8_t> bytes) {
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) return std::nullopt;
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  WebPData data{bytes.data(), bytes.size()};
  WebPAnimDecoder* decoder = WebPAnimDecoderNew(&data, &options);
  if (!decoder) return std::nullopt;
  WebPAnimInfo info;
  std::optional<Animation> a = Animation{};
  if (!WebPAnimDecoderGetInfo(decoder, &info)) a.reset();
  if (a) {
    a->width = static_cast<int32_t>(info.canvas_width);
    a->height = static_cast<int32_t>(info.canvas_height);
    a->loop_count = static_cast<int32_t>(info.loop_count);
  }
  int previous = 0;
  while (a && WebPAnimDecoderHasMoreFrames(decoder)) {
    uint8_t* pixels = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(decoder, &pixels, &timestamp)) {
      a.reset();
      break;
    }
    a->frames.push_back({std::vector<uint8_t>(pixels, pixels + static_cast<size_t>(a->width) * a->height * 4), timestamp - previous});
    previous = timestamp;
  }
  WebPAnimDecoderDelete(decoder);
  return a;
}

}  // namespace asg::testing
