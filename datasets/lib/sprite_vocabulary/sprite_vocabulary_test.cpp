#include "sprite_vocabulary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

namespace syn = asg::synthetic;

TEST(SpriteVocabulary, VersionIsSemantic) {
  int major = -1, minor = -1, patch = -1, consumed = 0;
  std::string v = syn::kVocabularyVersion;
  ASSERT_EQ(std::sscanf(v.c_str(), "%d.%d.%d%n", &major, &minor, &patch, &consumed), 3) << v;
  EXPECT_EQ(consumed, static_cast<int>(v.size()));
  EXPECT_STREQ(syn::kVocabularyName, "sprite-vocabulary");
}

TEST(SpriteVocabulary, NamesParseBackAndUnknownNamesDoNot) {
  for (const auto& name : syn::shape_names()) EXPECT_EQ(syn::shape_names()[static_cast<int>(*syn::parse_shape(name))], name);
  for (const auto& name : syn::direction_names())
    EXPECT_EQ(syn::direction_names()[static_cast<int>(*syn::parse_direction(name))], name);
  for (const auto& c : syn::palette()) EXPECT_EQ(syn::find_colour(c.name), &c);
  EXPECT_FALSE(syn::parse_shape("hexagon"));
  EXPECT_FALSE(syn::parse_direction("sideways"));
  EXPECT_EQ(syn::find_colour("magenta"), nullptr);
  EXPECT_EQ(syn::direction_phrase(syn::Direction::Right), "left to right");
  EXPECT_EQ(syn::direction_phrase(syn::Direction::Up), "bottom to top");
}

TEST(SpriteVocabulary, RenderedMasksMatchTheShapeMoments) {
  // A large rendering's area and centroid converge to the integrated moments.
  const int size = 201;
  const double radius = 90, c = size / 2.0;
  for (int s = 0; s < 4; ++s) {
    auto shape = static_cast<syn::Shape>(s);
    auto mask = syn::render_mask(shape, size, size, c, c, radius);
    double n = 0, sy = 0;
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x)
        if (mask[y * size + x]) n += 1, sy += (y + 0.5 - c) / radius;
    const auto& m = syn::moments(shape);
    EXPECT_NEAR(n / (radius * radius), m.area, 0.03) << syn::shape_names()[s];
    EXPECT_NEAR(sy / n, m.centroid_dy, 0.01) << syn::shape_names()[s];
  }
  EXPECT_NEAR(syn::moments(syn::Shape::Circle).area, M_PI, 0.01);
  EXPECT_TRUE(syn::inside(syn::Shape::Star, 0, -0.9));    // the top point
  EXPECT_FALSE(syn::inside(syn::Shape::Star, 0.4, -0.8));  // between two points
}
