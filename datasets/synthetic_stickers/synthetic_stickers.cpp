// synthetic_stickers: animated stickers generated deterministically from (seed, split, index).
// A sprite (shape x colour) on a transparent canvas that jumps in discrete steps across the frame;
// the caption names its colour, shape and direction. See README.md.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/kinds/dataset.h"
#include "asg/plugin.h"
#include "sprite_geometry.h"

namespace asg::synthetic {
namespace {

uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A tiny counter-based generator: sample i of a split is independent of every other sample, so
// random access and any number of reader threads give identical stickers.
class SampleRng {
 public:
  SampleRng(uint64_t seed, Split split, int64_t index)
      : state_(mix(mix(seed) ^ (static_cast<uint64_t>(split) + 1) * 0x632be59bd9b4e019ull) ^ static_cast<uint64_t>(index)) {}
  uint64_t next() { return state_ = mix(state_); }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  double uniform() { return (next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

std::vector<std::string> checked(const std::vector<std::string>& values, const std::vector<std::string>& allowed,
                                 const char* key) {
  if (values.empty()) throw config_error(fmt::format("[dataset] {} must not be empty (valid items: {})", key, fmt::join(allowed, ", ")));
  for (const auto& v : values)
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      throw config_error(fmt::format("[dataset] {} contains '{}' (valid items: {})", key, v, fmt::join(allowed, ", ")));
  return values;
}

class SyntheticStickers final : public Dataset {
 public:
  explicit SyntheticStickers(const Params& p)
      : size_(p.integer("size")),
        frames_(p.integer("frames")),
        fps_(p.real("fps")),
        hold_(p.integer("hold_frames")),
        sprite_scale_(p.real("sprite_scale")),
        seed_(static_cast<uint64_t>(p.integer("seed"))),
        sizes_{p.integer("train_size"), p.integer("validation_size"), p.integer("test_size")} {
    std::vector<std::string> colour_names;
    for (const auto& c : palette()) colour_names.push_back(c.name);
    colours_ = checked(p.strs("colours"), colour_names, "colours");
    shapes_ = checked(p.strs("shapes"), shape_names(), "shapes");
    directions_ = checked(p.strs("directions"), direction_names(), "directions");
    if (std::lround(size_ * sprite_scale_) >= size_)
      throw config_error(fmt::format("[dataset] sprite_scale = {} leaves no room to move on a {}px canvas (valid: < 1)", sprite_scale_, size_));
  }

  DatasetInfo info() const override {
    return DatasetInfo{frames_, size_, size_, fps_, {"colour", "shape", "direction"}};
  }

  int64_t size(Split split) const override { return sizes_[static_cast<int>(split)]; }

  Sticker get(Split split, int64_t index) const override {
    if (index < 0 || index >= size(split))
      throw data_error(fmt::format("synthetic_stickers: index {} outside the {} split (size {})", index, split_name(split), size(split)));
    SampleRng rng(seed_, split, index);
    const std::string& colour_name = colours_[rng.below(static_cast<int64_t>(colours_.size()))];
    const std::string& shape_name = shapes_[rng.below(static_cast<int64_t>(shapes_.size()))];
    const std::string& dir_name = directions_[rng.below(static_cast<int64_t>(directions_.size()))];
    const Colour& colour = *find_colour(colour_name);
    const Shape shape = *parse_shape(shape_name);
    const Direction dir = *parse_direction(dir_name);

    // Sprite diameter, with +-1px jitter so the size is not a constant of the data.
    const int64_t diameter = std::max<int64_t>(3, std::lround(size_ * sprite_scale_) + rng.below(3) - 1);
    const double radius = diameter / 2.0;
    const int64_t travel = size_ - diameter;  // pixels the sprite can move along its axis
    const int64_t positions = (frames_ + hold_ - 1) / hold_;
    const double cross = radius + rng.uniform() * static_cast<double>(travel);  // position on the other axis

    auto frames = torch::zeros({frames_, 4, size_, size_});
    auto acc = frames.accessor<float, 4>();
    for (int64_t t = 0; t < frames_; ++t) {
      // Discrete jumps: the sprite holds each position for hold_frames frames.
      int64_t k = t / hold_;
      double along = radius + (positions > 1 ? static_cast<double>(travel) * k / (positions - 1) : 0.0);
      if (dir == Direction::Left || dir == Direction::Up) along = size_ - along;
      bool horizontal = dir == Direction::Left || dir == Direction::Right;
      double cx = horizontal ? along : cross, cy = horizontal ? cross : along;
      auto mask = render_mask(shape, static_cast<int>(size_), static_cast<int>(size_), cx, cy, radius);
      for (int64_t y = 0; y < size_; ++y)
        for (int64_t x = 0; x < size_; ++x) {
          if (!mask[y * size_ + x]) continue;
          for (int c = 0; c < 3; ++c) acc[t][c][y][x] = colour.rgb[c] / 255.0f;
          acc[t][3][y][x] = 1.0f;
        }
    }
    Sticker s;
    s.id = fmt::format("{}/{:06}", split_name(split), index);
    s.frames = frames;
    s.frame_durations_ms.assign(frames_, static_cast<int32_t>(std::lround(1000.0 / fps_)));
    s.caption = fmt::format("a {} {} jumping from {}", colour_name, shape_name, direction_phrase(dir));
    s.labels = {{"colour", colour_name}, {"shape", shape_name}, {"direction", dir_name}};
    return s;
  }

 private:
  int64_t size_, frames_;
  double fps_;
  int64_t hold_;
  double sprite_scale_;
  uint64_t seed_;
  std::array<int64_t, 3> sizes_;
  std::vector<std::string> colours_, shapes_, directions_;
};

std::vector<ParamSpec> params() {
  std::vector<std::string> colour_names;
  for (const auto& c : palette()) colour_names.push_back(c.name);
  return {
      int_param("size", 16, "canvas height and width in pixels").range(8, 512),
      int_param("frames", 8, "frames per sticker").range(2, 256),
      float_param("fps", 4.0, "nominal frame rate (low, as stickers are)").range(0.5, 60),
      int_param("hold_frames", 2, "frames the sprite holds each position before it jumps").range(1, 64),
      float_param("sprite_scale", 0.55, "sprite diameter as a fraction of the canvas").range(0.1, 0.9),
      string_list_param("colours", colour_names, "colours to draw from"),
      string_list_param("shapes", shape_names(), "shapes to draw from"),
      string_list_param("directions", direction_names(), "motion directions to draw from"),
      int_param("seed", 0, "dataset seed (independent of the run seed: the data stay fixed across runs)").range(0, 9.2e18),
      int_param("train_size", 100000, "stickers in the train split").range(0, 1e12),
      int_param("validation_size", 256, "stickers in the validation split").range(0, 1e12),
      int_param("test_size", 256, "stickers in the test split").range(0, 1e12),
  };
}

}  // namespace
}  // namespace asg::synthetic

ASG_PLUGIN_LIBRARY(asg::make_factory<asg::Dataset>(
    "synthetic_stickers", "1.0.0", "deterministic synthetic animated stickers: jumping sprites on transparency, with captions",
    asg::synthetic::params(), [](const asg::Params& p) { return std::make_shared<asg::synthetic::SyntheticStickers>(p); }))
