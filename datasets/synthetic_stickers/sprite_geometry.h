// Geometry of the synthetic stickers: the shapes, the palette and the caption vocabulary.
// Shared by the synthetic_stickers dataset (which draws them) and the caption_accuracy metric (which
// measures them), so the two can never disagree. No torch.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace asg::synthetic {

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
