#include "sprite_vocabulary.h"

#include <algorithm>
#include <cmath>

namespace asg::synthetic {

const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> names = {"circle", "square", "triangle", "star"};
  return names;
}

const std::vector<Colour>& palette() {
  static const std::vector<Colour> colours = {
      {"red", {220, 40, 40}},    {"green", {40, 170, 60}},   {"blue", {40, 80, 220}},
      {"yellow", {235, 200, 30}}, {"purple", {140, 60, 190}}, {"orange", {245, 135, 25}},
  };
  return colours;
}

const std::vector<std::string>& direction_names() {
  static const std::vector<std::string> names = {"left", "right", "up", "down"};
  return names;
}

std::optional<Shape> parse_shape(const std::string& name) {
  const auto& n = shape_names();
  auto it = std::find(n.begin(), n.end(), name);
  if (it == n.end()) return std::nullopt;
  return static_cast<Shape>(it - n.begin());
}

std::optional<Direction> parse_direction(const std::string& name) {
  const auto& n = direction_names();
  auto it = std::find(n.begin(), n.end(), name);
  if (it == n.end()) return std::nullopt;
  return static_cast<Direction>(it - n.begin());
}

const Colour* find_colour(const std::string& name) {
  for (const auto& c : palette())
    if (c.name == name) return &c;
  return nullptr;
}

std::string direction_phrase(Direction d) {
  switch (d) {
    case Direction::Left: return "right to left";
    case Direction::Right: return "left to right";
    case Direction::Up: return "bottom to top";
    case Direction::Down: return "top to bottom";
  }
  return "";
}

namespace {

bool in_polygon(const std::vector<std::pair<double, double>>& poly, double x, double y) {
  bool in = false;
  for (size_t i = 0, j = poly.size() - 1; i < poly.size(); j = i++) {
    auto [xi, yi] = poly[i];
    auto [xj, yj] = poly[j];
    if (((yi > y) != (yj > y)) && (x < (xj - xi) * (y - yi) / (yj - yi) + xi)) in = !in;
  }
  return in;
}

const std::vector<std::pair<double, double>>& star_polygon() {
  static const std::vector<std::pair<double, double>> poly = [] {
    std::vector<std::pair<double, double>> p;
    for (int i = 0; i < 10; ++i) {
      double r = (i % 2 == 0) ? 1.0 : 0.45;
      double a = -M_PI / 2 + i * M_PI / 5;
      p.emplace_back(r * std::cos(a), r * std::sin(a));
    }
    return p;
  }();
  return poly;
}

const std::vector<std::pair<double, double>>& triangle_polygon() {
  static const std::vector<std::pair<double, double>> poly = {{0.0, -0.95}, {0.95, 0.8}, {-0.95, 0.8}};
  return poly;
}

}  // namespace

bool inside(Shape shape, double x, double y) {
  switch (shape) {
    case Shape::Circle: return x * x + y * y <= 1.0;
    case Shape::Square: return std::fabs(x) <= 0.82 && std::fabs(y) <= 0.82;
    case Shape::Triangle: return in_polygon(triangle_polygon(), x, y);
    case Shape::Star: return in_polygon(star_polygon(), x, y);
  }
  return false;
}

std::vector<uint8_t> render_mask(Shape shape, int width, int height, double cx, double cy, double radius) {
  std::vector<uint8_t> mask(static_cast<size_t>(width) * height, 0);
  if (radius <= 0) return mask;
  int y0 = std::max(0, static_cast<int>(std::floor(cy - radius - 1)));
  int y1 = std::min(height - 1, static_cast<int>(std::ceil(cy + radius + 1)));
  int x0 = std::max(0, static_cast<int>(std::floor(cx - radius - 1)));
  int x1 = std::min(width - 1, static_cast<int>(std::ceil(cx + radius + 1)));
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x)
      if (inside(shape, (x + 0.5 - cx) / radius, (y + 0.5 - cy) / radius)) mask[static_cast<size_t>(y) * width + x] = 1;
  return mask;
}

const ShapeMoments& moments(Shape shape) {
  static const std::array<ShapeMoments, 4> table = [] {
    std::array<ShapeMoments, 4> out{};
    constexpr int kN = 800;  // numeric integration on a fine grid over [-1, 1]^2
    for (int s = 0; s < 4; ++s) {
      double count = 0, sx = 0, sy = 0;
      for (int i = 0; i < kN; ++i)
        for (int j = 0; j < kN; ++j) {
          double x = -1 + (j + 0.5) * 2.0 / kN, y = -1 + (i + 0.5) * 2.0 / kN;
          if (inside(static_cast<Shape>(s), x, y)) {
            count += 1;
            sx += x;
            sy += y;
          }
        }
      out[s] = ShapeMoments{count * 4.0 / (double(kN) * kN), sx / count, sy / count};
    }
    return out;
  }();
  return table[static_cast<int>(shape)];
}

}  // namespace asg::synthetic
