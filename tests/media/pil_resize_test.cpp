// asg::pil_resize against Pillow's own Image.resize (scripts/fixtures/pil_resize_reference.py): box, bilinear
// and bicubic, upscaling and antialiased downscaling, one axis or both, both pass orders; every pixel equal.
#include "asg/media/pil_resize.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "asg/files.h"
#include "test_paths.h"

TEST(PilResize, BoxBilinearAndBicubicArePillowsBitForBit) {
  const auto dir = asg::testing::make_temp_dir("pil-resize-filters");
  ASSERT_TRUE(asg::testing::write_fixture("pil_resize_reference.py", dir)) << "PIL and numpy: the reference environment, scripts/setup.sh";
  const auto cases = nlohmann::json::parse(asg::read_text_file(dir / "cases.json"))["cases"];
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const int64_t h = c["h"], w = c["w"], oh = c["out_h"], ow = c["out_w"];
    const std::string in = asg::read_text_file(dir / c["in"].get<std::string>());
    ASSERT_EQ(in.size(), static_cast<size_t>(h * w * 3));
    for (const auto& [filter, key] : std::vector<std::pair<asg::PilFilter, std::string>>{
             {asg::PilFilter::Box, "box"}, {asg::PilFilter::Bilinear, "bilinear"}, {asg::PilFilter::Bicubic, "out"}}) {
      SCOPED_TRACE(fmt::format("{}x{} -> {}x{}, {}", h, w, oh, ow, key == "out" ? "bicubic" : key));
      const std::string expected = asg::read_text_file(dir / c[key].get<std::string>());
      const auto got = asg::pil_resize(reinterpret_cast<const uint8_t*>(in.data()), h, w, 3, oh, ow, filter);
      ASSERT_EQ(got.size(), expected.size());
      size_t differing = 0;
      for (size_t i = 0; i < got.size(); ++i) differing += got[i] != static_cast<uint8_t>(expected[i]);
      EXPECT_EQ(differing, 0u);
    }
  }
  std::filesystem::remove_all(dir);
}
