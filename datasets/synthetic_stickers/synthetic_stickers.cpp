// synthetic_stickers: animated stickers generated deterministically from (seed, split, index).
// A sprite (shape x colour) on a transparent canvas that jumps in discrete steps across the frame;
// the caption names its colour, shape and direction. See README.md.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "asg/hash.h"
#include "asg/kinds/dataset.h"
#include "asg/plugin.h"
#include "sprite_vocabulary.h"

namespace asg::synthetic {
namespace {

constexpr uint64_t mix(uint64_t z) { return splitmix64(z); }

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
  if (values.empty()) throw config_error(fmt::format("{} must not be empty (valid items: {})", key, fmt::join(allowed, ", ")));
  for (const auto& v : values)
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      throw config_error(fmt::format("{} contains '{}' (valid items: {})", key, v, fmt::join(allowed, ", ")));
  return values;
}

// A [lo, hi] pair from an int-list parameter of length 2, checked to be ordered.
std::pair<int64_t, int64_t> ordered_pair(const Params& p, const char* key) {
  const auto& v = p.integers(key);
  if (v[0] > v[1]) throw config_error(fmt::format("{} = [{}, {}]: expected [min, max] with min <= max", key, v[0], v[1]));
  return {v[0], v[1]};
}

// One clip's motion: everything about where the sprite is in each frame.
struct Path {
  int64_t hold = 1;    // frames the sprite stays at each position
  int64_t phase = 0;   // frames of the first hold already spent before the clip starts
  int64_t jump = 0;    // pixels per jump
  int64_t start = 0;   // offset along the axis of motion at the first position, in [0, travel]
  int64_t cross = 0;   // offset on the other axis, in [0, travel]
  int64_t positions(int64_t frames) const { return (frames + phase + hold - 1) / hold; }
  int64_t along(int64_t t) const { return start + (t + phase) / hold * jump; }
};

class SyntheticStickers final : public Dataset {
 public:
  explicit SyntheticStickers(const Params& p)
      : size_(p.integer("size")),
        frames_(p.integer("frames")),
        fps_(p.real("fps")),
        hold_(ordered_pair(p, "hold_frames")),
        jump_(ordered_pair(p, "jump")),
        random_phase_(p.boolean("random_phase")),
        sprite_scale_(p.real("sprite_scale")),
        seed_(static_cast<uint64_t>(p.integer("seed"))),
        sizes_{p.integer("train_size"), p.integer("validation_size"), p.integer("test_size")} {
    std::vector<std::string> colour_names;
    for (const auto& c : palette()) colour_names.push_back(c.name);
    colours_ = checked(p.strs("colours"), colour_names, "colours");
    shapes_ = checked(p.strs("shapes"), shape_names(), "shapes");
    directions_ = checked(p.strs("directions"), direction_names(), "directions");
    if (hold_.second >= frames_)
      throw config_error(fmt::format("hold_frames max = {} leaves no jump in {} frames (valid: max < frames)",
                                     hold_.second, frames_));
    // The hardest clip to fit: the largest sprite, the shortest hold with the most positions, the
    // smallest jump. If that fits, every clip has at least one valid jump size and start.
    const int64_t largest = std::lround(size_ * sprite_scale_) + 1;
    const int64_t most_positions = Path{hold_.first, random_phase_ ? hold_.first - 1 : 0}.positions(frames_);
    if (largest >= size_ || jump_.first * (most_positions - 1) > size_ - largest)
      throw config_error(fmt::format(
          "the motion does not fit the canvas: a {}px sprite (sprite_scale = {}) leaves {}px of travel on a {}px "
          "canvas, but {} frames with hold_frames min {} make {} positions, and jump min {} needs {}px (valid: lower "
          "sprite_scale or jump min, raise hold_frames min, or use a larger size)",
          largest, sprite_scale_, std::max<int64_t>(0, size_ - largest), size_, frames_, hold_.first, most_positions,
          jump_.first, jump_.first * (most_positions - 1)));
  }

  DatasetInfo info() const override {
    return DatasetInfo{frames_, size_, size_, fps_, {"colour", "shape", "direction", "hold_frames", "jump"},
                       Vocabulary{kVocabularyName, kVocabularyVersion}};
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
    const int64_t travel = size_ - diameter;  // offsets a sprite can take along an axis: 0..travel
    // The path: hold length, phase, jump size and start are drawn per clip, so a frame's position is
    // not a function of its index and caption; only frames that agree with each other trace it.
    Path path;
    path.hold = hold_.first + rng.below(hold_.second - hold_.first + 1);
    path.phase = random_phase_ ? rng.below(path.hold) : 0;
    const int64_t steps = path.positions(frames_) - 1;
    const int64_t max_jump = steps > 0 ? std::min(jump_.second, travel / steps) : 0;
    path.jump = steps > 0 ? jump_.first + rng.below(max_jump - jump_.first + 1) : 0;
    path.start = rng.below(travel - steps * path.jump + 1);
    path.cross = rng.below(travel + 1);

    // The sprite is drawn once and translated by whole pixels, so every frame shows exactly the same
    // mask: identity and path can be measured exactly on real data.
    const auto mask = render_mask(shape, static_cast<int>(diameter), static_cast<int>(diameter), diameter / 2.0,
                                  diameter / 2.0, diameter / 2.0);
    auto frames = torch::zeros({frames_, 4, size_, size_});
    auto acc = frames.accessor<float, 4>();
    const bool horizontal = dir == Direction::Left || dir == Direction::Right;
    for (int64_t t = 0; t < frames_; ++t) {
      int64_t along = path.along(t);
      if (dir == Direction::Left || dir == Direction::Up) along = travel - along;
      const int64_t ox = horizontal ? along : path.cross, oy = horizontal ? path.cross : along;
      for (int64_t y = 0; y < diameter; ++y)
        for (int64_t x = 0; x < diameter; ++x) {
          if (!mask[y * diameter + x]) continue;
          for (int c = 0; c < 3; ++c) acc[t][c][oy + y][ox + x] = colour.rgb[c] / 255.0f;
          acc[t][3][oy + y][ox + x] = 1.0f;
        }
    }
    Sticker s;
    s.id = fmt::format("{}/{:06}", split_name(split), index);
    s.frames = frames;
    s.frame_durations_ms.assign(frames_, static_cast<int32_t>(std::lround(1000.0 / fps_)));
    s.caption = fmt::format("a {} {} jumping from {}", colour_name, shape_name, direction_phrase(dir));
    s.labels = {{"colour", colour_name},
                {"shape", shape_name},
                {"direction", dir_name},
                {"hold_frames", std::to_string(path.hold)},
                {"jump", std::to_string(path.jump)}};
    return s;
  }

 private:
  int64_t size_, frames_;
  double fps_;
  std::pair<int64_t, int64_t> hold_, jump_;
  bool random_phase_;
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
      int_list_param("hold_frames", {2, 3}, "[min, max] frames the sprite holds each position; drawn per clip").range(1, 64).length(2, 2),
      int_list_param("jump", {2, 4}, "[min, max] pixels per jump; drawn per clip among the sizes that fit").range(1, 512).length(2, 2),
      bool_param("random_phase", true, "start each clip at a random point of its first hold (jumps fall on different frames)"),
      float_param("sprite_scale", 0.45, "sprite diameter as a fraction of the canvas (+-1 px per clip)").range(0.1, 0.9),
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
    "synthetic_stickers", "2.0.0", "deterministic synthetic animated stickers: sprites jumping along random paths on transparency, with captions",
    asg::synthetic::params(), [](const asg::Params& p) { return std::make_shared<asg::synthetic::SyntheticStickers>(p); }))
