// The sprite vocabulary: the shapes, the palette, the motion directions and the geometry of the
// synthetic stickers. One small library, versioned on its own, shared by the dataset that draws
// sprites (synthetic_stickers) and the metric that measures them (caption_accuracy), so the two can
// never disagree. A dataset announces the vocabulary it uses (DatasetInfo::vocabulary) and a metric
// declares the vocabulary it requires (Factory::requires_vocabulary); the core refuses a mismatch
// before anything is trained. No torch.
//
// Versioning: bump the minor when something is added (a colour, a shape), the major when an existing
// name, colour value, geometry or caption phrase changes meaning.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace asg::synthetic {

inline constexpr const char* kVocabularyName = "sprite-vocabulary";
inline constexpr const char* kVocabularyVersion = "1.0.0";

enum class Shape { Circle, Square, Triangle, Star };
enum class Direction { Left, Right, Up, Down };

struct Colour {
  std::string name;
  std::array<uint8_t, 3> rgb;
};

const std::vector<std::string>& shape_names();      // circle, square, triangle, star
const std::vector<Colour>& palette();               // red, green, blue, yellow, purple, orange
const std::vector<std::string>& direction_names();  // left, right, up, down
std::optional<Shape> parse_shape(const std::string& name);
std::optional<Direction> parse_direction(const std::string& name);
const Colour* find_colour(const std::string& name);

// The caption phrase for a direction: "right to left", "left to right", "bottom to top", "top to bottom".
std::string direction_phrase(Direction d);

// Whether the point (x, y), in units of the sprite radius around its centre (y pointing down), lies
// inside the shape.
bool inside(Shape shape, double x, double y);

// Binary coverage mask [height * width] of a shape of `radius` pixels centred at (cx, cy) in pixel
// coordinates (pixel centres at i + 0.5).
std::vector<uint8_t> render_mask(Shape shape, int width, int height, double cx, double cy, double radius);

// Area of the shape at radius 1 and the offset of its centroid from its centre (y down), both in
// radius units; used to fit templates to measured masks.
struct ShapeMoments {
  double area;
  double centroid_dx, centroid_dy;
};
const ShapeMoments& moments(Shape shape);

}  // namespace asg::synthetic
