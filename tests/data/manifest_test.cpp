// Manifest plumbing without a dataset: CSV records, which paths are usable under a root, and the compact
// row storage that lets a 2M-row manifest fit in memory.
#include "asg/data/manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "asg/error.h"
#include "test_paths.h"

namespace fs = std::filesystem;

TEST(Csv, QuotesCommasNewlinesAndLineNumbers) {
  const auto records = asg::parse_csv("\xEF\xBB\xBF" "a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\n\n\"multi\nline\",z\nlast,row", "m.csv");
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].second, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(records[1].second, (std::vector<std::string>{"x, y", "say \"hi\""}));
  EXPECT_EQ(records[2].first, 4);  // after a blank line
  EXPECT_EQ(records[2].second, (std::vector<std::string>{"multi\nline", "z"}));
  EXPECT_EQ(records[3].first, 6);
  EXPECT_EQ(records[3].second, (std::vector<std::string>{"last", "row"}));
  try {
    asg::parse_csv("a,b\n\"never closed,x\n", "m.csv");
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_STREQ(e.what(), "m.csv:2: a quoted field is never closed");
  }
}

TEST(ManifestPaths, OnlyPathsInsideTheRootAreUsable) {
  const fs::path root = asg::testing::make_temp_dir("manifest-paths");
  std::ofstream(root / "ok.gif") << "GIF89a";
  EXPECT_FALSE(asg::unusable_path(root, "ok.gif", true));
  EXPECT_FALSE(asg::unusable_path(root, "./sub/../ok.gif", true));
  EXPECT_NE(asg::unusable_path(root, "../x.gif", false)->find("leaves the dataset root"), std::string::npos);
  EXPECT_NE(asg::unusable_path(root, "a/../../x.gif", false)->find("leaves the dataset root"), std::string::npos);
  EXPECT_NE(asg::unusable_path(root, "/etc/passwd", false)->find("absolute path"), std::string::npos);
  EXPECT_FALSE(asg::unusable_path(root, "missing.gif", false));  // without check_file only the path is judged
  EXPECT_NE(asg::unusable_path(root, "missing.gif", true)->find("no such file"), std::string::npos);
  fs::remove_all(root);
}

TEST(Manifest, RowsAreStoredCompactly) {
  const fs::path dir = asg::testing::make_temp_dir("manifest-compact");
  {
    std::ofstream out(dir / "m.jsonl");
    for (int i = 0; i < 20000; ++i)
      out << "{\"id\": \"" << i << "\", \"path\": \"s/" << i << ".gif\", \"caption\": \"a cat number " << i
          << " waves\", \"labels\": {\"mood\": \"happy\"}}\n";
  }
  asg::ManifestOptions options;
  options.check_files = false;
  const auto m = asg::Manifest::read(dir / "m.jsonl", options);
  ASSERT_EQ(m.size(), 20000u);
  const auto row = m.row(1234);
  EXPECT_EQ(row.id, "1234");
  EXPECT_EQ(row.path, "s/1234.gif");
  EXPECT_EQ(row.caption, "a cat number 1234 waves");
  EXPECT_EQ(row.labels.at("mood"), "happy");
  EXPECT_EQ(row.line, 1235);
  EXPECT_EQ(m.file(1234), dir / "s/1234.gif");
  // About 40 bytes of fixed entry plus the strings (~45 bytes here) per row.
  EXPECT_LT(m.memory_bytes() / m.size(), 120u) << m.memory_bytes();
  fs::remove_all(dir);
}

TEST(ManifestOptions, SplitFractionsMustLeaveRoomForTest) {
  asg::ManifestOptions o;
  o.set_split_fractions({0.8, 0.15});
  EXPECT_DOUBLE_EQ(o.train_fraction, 0.8);
  EXPECT_DOUBLE_EQ(o.validation_fraction, 0.15);
  try {
    o.set_split_fractions({0.9, 0.2});
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_EQ(e.kind(), asg::ErrorKind::Config);
    EXPECT_STREQ(e.what(), "split_fractions = [0.9, 0.2]: expected [train, validation], each >= 0, adding up to at most 1 "
                           "(test takes the rest)");
  }
}
