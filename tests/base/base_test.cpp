// The base layer's helpers: the allocator settings, the hashes, enum name tables.
#include "asg/allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "asg/hash.h"
#include "asg/params.h"
#include "test_paths.h"

namespace {

TEST(KeepFreedMemoryForReuse, SetsBothThresholdsWhenTheUserDidNot) {
  for (const char* name : {"MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"}) unsetenv(name);
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer brings its own allocator, whose mallopt accepts nothing: the line must say so.
  EXPECT_EQ(asg::keep_freed_memory_for_reuse(), "malloc: could not set the trim and mmap thresholds; glibc defaults apply");
#else
  // mallopt refuses values out of range (an mmap threshold above 32 MiB on 64-bit): the line would say so.
  EXPECT_EQ(asg::keep_freed_memory_for_reuse(),
            "malloc: freed memory kept for reuse (trim threshold 1 GiB, mmap threshold 32 MiB)");
#endif
}

TEST(KeepFreedMemoryForReuse, LeavesMallocAloneWhenTheEnvironmentTunedIt) {
  setenv("MALLOC_MMAP_THRESHOLD_", "65536", 1);
  const std::string line = asg::keep_freed_memory_for_reuse();
  unsetenv("MALLOC_MMAP_THRESHOLD_");
  EXPECT_NE(line.find("left as tuned by the environment (MALLOC_MMAP_THRESHOLD_ is set)"), std::string::npos) << line;
}

}  // namespace

TEST(Hash, Fnv1aAndSplitmix64MatchTheirPublishedVectors) {
  EXPECT_EQ(asg::fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(asg::fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(asg::fnv1a64("foobar"), 0x85944171f73967e8ull);
  EXPECT_EQ(asg::splitmix64(0), 0xe220a8397b1dcdafull);
  EXPECT_EQ(asg::splitmix64(1), 0x910a2dec89025cc1ull);
}

TEST(Hash, Sha256OfBytesAndFiles) {
  EXPECT_EQ(asg::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto dir = asg::testing::make_temp_dir("hash");
  std::ofstream(dir / "f") << "abc";
  EXPECT_EQ(asg::sha256_file(dir / "f"), asg::sha256_hex("abc"));
  std::filesystem::remove_all(dir);
}

namespace {
enum class Colour { Red, Green };
const asg::EnumNames<Colour>& colour_names() {
  static const asg::EnumNames<Colour> names{{Colour::Red, "red"}, {Colour::Green, "green"}};
  return names;
}
}  // namespace

TEST(EnumNames, OneTableGivesTheSchemaTheParserAndThePrinter) {
  asg::ParamSpec spec = asg::enum_param("colour", Colour::Green, colour_names(), "a colour");
  EXPECT_EQ(std::get<std::string>(spec.default_value), "green");
  EXPECT_EQ(spec.choices, (std::vector<std::string>{"red", "green"}));
  EXPECT_EQ(colour_names().parse("red", "colour"), Colour::Red);
  EXPECT_STREQ(colour_names().name(Colour::Green), "green");
  try {
    colour_names().parse("blue", "[dataset] colour");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(), "[dataset] colour = \"blue\": unknown value (valid: red, green)");
  }
}
