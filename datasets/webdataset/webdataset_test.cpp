// webdataset on shards these tests write: grouping members into samples, re-reading by offset, unsafe
// members, splits, and the stream: every sample once per epoch, seeded orders, the split across ranks
// and workers, and the shuffle buffer.
#include <archive.h>
#include <fmt/format.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <set>

#include "asg/data/manifest.h"
#include "asg/data/tar_shards.h"
#include "asg/kinds/dataset.h"
#include "asg/media/gif.h"
#include "asg/media/sticker_file.h"
#include "asg/files.h"
#include "plugin_under_test.h"
#include "test_animation.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using asg::testing::make_under_test;

namespace {

std::string gif_bytes(const fs::path& dir, int variant) {
  const fs::path tmp = dir / "tmp.gif";
  asg::write_gif(tmp, asg::testing::test_animation(8 + variant % 3, 8, 2 + variant % 4, true));
  return asg::read_text_file(tmp);
}

class WebDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = asg::testing::make_temp_dir("webdataset"); }
  void TearDown() override { fs::remove_all(dir_); }

  // `shards` shards of `per_shard` samples: key NNNN, a GIF, and a .json (caption, split) or a .txt.
  void write_shards(int shards, int per_shard, const std::vector<std::string>& splits = {"train"}) {
    int n = 0;
    for (int s = 0; s < shards; ++s) {
      asg::ShardWriter w(dir_ / fmt::format("shard-{:06}.tar", s));
      for (int i = 0; i < per_shard; ++i, ++n) {
        const std::string key = fmt::format("{:04}", n), gif = gif_bytes(dir_, n);
        w.add(key + ".gif", gif.data(), gif.size());
        if (n % 3 == 0) {
          const std::string txt = fmt::format("sticker {} (from txt)\n", n);
          w.add(key + ".txt", txt.data(), txt.size());
        } else {
          const std::string json = fmt::format(R"({{"caption": "sticker {}", "split": "{}"}})", n, splits[n % splits.size()]);
          w.add(key + ".json", json.data(), json.size());
        }
      }
      w.close();
    }
  }

  std::shared_ptr<asg::Dataset> make(std::map<std::string, asg::ParamValue> p = {}) {
    if (!p.count("shards")) p["shards"] = std::vector<std::string>{(dir_ / "shard-{000000..000002}.tar").string()};
    p["height"] = int64_t{8};
    p["width"] = int64_t{8};
    p["frames"] = int64_t{4};
    if (!p.count("split_fractions")) p["split_fractions"] = std::vector<double>{1.0, 0.0};
    return make_under_test<asg::Dataset>("webdataset", p);
  }

  // Decodes every item of `stream`: how many decoded; the data errors of the others go to `errors`.
  static int decode_all(asg::SampleStream& stream, std::vector<std::string>& errors) {
    int good = 0;
    while (auto item = stream.next()) {
      try {
        item->decode();
        ++good;
      } catch (const asg::Error& e) {
        EXPECT_EQ(e.kind(), asg::ErrorKind::Data) << e.what();
        errors.push_back(e.what());
      }
    }
    return good;
  }

  static std::vector<std::string> drain(asg::SampleStream& stream) {
    std::vector<std::string> ids;
    while (auto item = stream.next()) ids.push_back(item->id);
    return ids;
  }

  fs::path dir_;
};

}  // namespace

TEST_F(WebDatasetTest, MembersGroupIntoSamplesThatCanBeReReadFromTheirOffset) {
  write_shards(1, 5);
  std::vector<asg::ShardSample> all;
  asg::ShardReader reader(dir_ / "shard-000000.tar");
  while (auto s = reader.next()) all.push_back(*s);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].key, "0000");
  EXPECT_TRUE(all[0].parts.count("gif"));
  EXPECT_TRUE(all[0].parts.count("txt"));
  EXPECT_TRUE(all[1].parts.count("json"));
  EXPECT_EQ(all[0].offset, 0u);
  for (const auto& s : all) {
    asg::ShardReader again(dir_ / "shard-000000.tar", s.offset);
    const auto first = again.next();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->key, s.key);
    EXPECT_EQ(first->parts, s.parts);
  }
  // Headers only: sticker parts skipped, small parts kept.
  asg::ShardReader headers(dir_ / "shard-000000.tar", 0, false, {"json", "txt"});
  const auto h = headers.next();
  EXPECT_TRUE(h->parts.at("gif").empty());
  EXPECT_FALSE(h->parts.at("txt").empty());
}

TEST_F(WebDatasetTest, UnsafeMembersAreRefusedAndCountedNotExtracted) {
  {
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    ASSERT_EQ(archive_write_open_filename(a, (dir_ / "shard-000000.tar").c_str()), ARCHIVE_OK);
    auto add = [&](const std::string& name, const std::string& data, unsigned type, const char* link = nullptr) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, name.c_str());
      archive_entry_set_filetype(e, type);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
      if (link) archive_entry_set_symlink(e, link);
      archive_write_header(a, e);
      if (!data.empty()) archive_write_data(a, data.data(), data.size());
      archive_entry_free(e);
    };
    const std::string gif = gif_bytes(dir_, 1), caption = "fine";
    add("0000.gif", gif, AE_IFREG);
    add("0000.txt", caption, AE_IFREG);
    add("../0001.gif", gif, AE_IFREG);
    add("../0001.txt", caption, AE_IFREG);
    add("/tmp/0002.gif", gif, AE_IFREG);
    add("/tmp/0002.txt", caption, AE_IFREG);
    add("0003.gif", "", AE_IFLNK, "/etc/passwd");
    add("0003.txt", caption, AE_IFREG);
    add("0004.gif", gif, AE_IFREG);  // no caption
    archive_write_close(a);
    archive_write_free(a);
  }
  auto ds = make({{"shards", std::vector<std::string>{(dir_ / "shard-000000.tar").string()}}});
  EXPECT_EQ(ds->size(asg::Split::Train), 1);
  std::map<std::string, std::string> why;
  for (const auto& r : ds->rejected()) why[r.id] = r.reason;
  ASSERT_EQ(why.size(), 4u);
  EXPECT_NE(why["shard-000000.tar:../0001"].find("leaves the shard"), std::string::npos);
  EXPECT_NE(why["shard-000000.tar:/tmp/0002"].find("absolute path"), std::string::npos);
  EXPECT_NE(why["shard-000000.tar:0003"].find("not a regular file"), std::string::npos);
  EXPECT_NE(why["shard-000000.tar:0004"].find("has no caption"), std::string::npos);
  // The stream hands the refused ones out as items that fail with the reason (the loader counts them).
  std::vector<std::string> errors;
  const int good = decode_all(*ds->open_stream(asg::Split::Train, {}, 0, 1), errors);
  const int bad = static_cast<int>(errors.size());
  EXPECT_EQ(good, 1);
  EXPECT_EQ(bad, 4);
}

TEST_F(WebDatasetTest, SplitsCaptionsAndGetByOffsetMatchTheStream) {
  write_shards(3, 4, {"train", "test"});
  auto ds = make();
  // Samples 0, 3, 6, 9 have a .txt (hash split, all train here); the others alternate train/test by n.
  EXPECT_EQ(ds->size(asg::Split::Train) + ds->size(asg::Split::Test), 12);
  EXPECT_EQ(ds->size(asg::Split::Test), 4);  // n = 1, 5, 7, 11 (n % 3 != 0 and n odd)
  EXPECT_TRUE(ds->info().sequential);
  std::map<std::string, torch::Tensor> by_id;
  for (int64_t i = 0; i < ds->size(asg::Split::Test); ++i) {
    auto s = ds->get(asg::Split::Test, i);
    EXPECT_EQ(s.frames.sizes(), (std::vector<int64_t>{4, 4, 8, 8}));
    by_id[s.id] = s.frames;
  }
  auto stream = ds->open_stream(asg::Split::Test, {}, 0, 5);
  int n = 0;
  while (auto item = stream->next()) {
    ASSERT_TRUE(by_id.count(item->id)) << item->id;
    EXPECT_TRUE(torch::equal(item->decode().frames, by_id[item->id]));
    ++n;
  }
  EXPECT_EQ(n, 4);
  EXPECT_EQ(ds->get(asg::Split::Train, 0).caption, "sticker 0 (from txt)");
}

TEST_F(WebDatasetTest, EachEpochStreamsEverySampleOnceInASeededOrder) {
  write_shards(3, 10);
  auto ds = make({{"shuffle_buffer", int64_t{4}}});
  const auto a = drain(*ds->open_stream(asg::Split::Train, {}, 0, 7));
  ASSERT_EQ(a.size(), 30u);
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), 30u);
  EXPECT_EQ(drain(*ds->open_stream(asg::Split::Train, {}, 0, 7)), a) << "same seed and epoch, same order";
  EXPECT_NE(drain(*ds->open_stream(asg::Split::Train, {}, 1, 7)), a) << "another epoch reshuffles";
  EXPECT_NE(drain(*ds->open_stream(asg::Split::Train, {}, 0, 8)), a) << "another seed reshuffles";
  // A buffer of 1 does not shuffle within shards: each shard's samples come in file order.
  auto unshuffled = make({{"shuffle_buffer", int64_t{1}}});
  const auto in_order = drain(*unshuffled->open_stream(asg::Split::Train, {}, 0, 7));
  for (size_t i = 1; i < in_order.size(); ++i) {
    if (in_order[i].substr(0, 16) == in_order[i - 1].substr(0, 16)) {
      EXPECT_LT(in_order[i - 1], in_order[i]);
    }
  }
}

TEST_F(WebDatasetTest, RanksAndWorkersShareTheShardsWithoutOverlap) {
  write_shards(4, 3);
  // 4 shards over 2 ranks x 2 workers: one shard each; over 3 readers: 2, 1, 1.
  std::vector<std::string> seen;
  for (int64_t rank = 0; rank < 2; ++rank)
    for (int64_t worker = 0; worker < 2; ++worker) {
      auto ds = make({{"shards", std::vector<std::string>{(dir_ / "shard-*.tar").string()}}});
      const auto mine = drain(*ds->open_stream(asg::Split::Train, asg::StreamSlice{rank, 2, worker, 2}, 3, 11));
      EXPECT_EQ(mine.size(), 3u) << rank << "/" << worker;
      seen.insert(seen.end(), mine.begin(), mine.end());
    }
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 12u);
  EXPECT_EQ(seen.size(), 12u);
  auto ds = make({{"shards", std::vector<std::string>{dir_.string()}}});  // a directory: every *.tar
  size_t total = 0;
  for (int64_t r = 0; r < 3; ++r) total += drain(*ds->open_stream(asg::Split::Train, asg::StreamSlice{r, 3, 0, 1}, 0, 1)).size();
  EXPECT_EQ(total, 12u);
}

TEST_F(WebDatasetTest, ShardPatternsThatMatchNothingAreErrors) {
  write_shards(2, 1);
  EXPECT_EQ(asg::expand_shard_patterns({(dir_ / "shard-{000000..000001}.tar").string()}).size(), 2u);
  try {
    asg::expand_shard_patterns({(dir_ / "shard-{000000..000005}.tar").string()});
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard-000002.tar does not exist"), std::string::npos) << e.what();
  }
  try {
    asg::expand_shard_patterns({(dir_ / "nothing-*.tar").string()});
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("matches no file"), std::string::npos) << e.what();
  }
}

TEST_F(WebDatasetTest, AShardIndexOpensTheSameSamplesAndIsRefusedOnceAShardChanges) {
  write_shards(2, 4, {"train", "test"});
  const std::vector<std::string> patterns{(dir_ / "shard-*.tar").string()};
  asg::ManifestOptions options;
  options.format = asg::ManifestFormat::Shards;
  options.train_fraction = 1.0;
  options.validation_fraction = 0.0;
  const auto scanned = asg::Manifest::read_shards(patterns, options);
  ASSERT_EQ(scanned.size(), 8u);
  EXPECT_EQ(scanned.shards().size(), 2u);
  EXPECT_EQ(scanned.row(1).path.substr(0, 17), "shard-000000.tar#");
  scanned.save_index(dir_ / "shards.asgidx");
  auto fresh = make({{"shards", patterns}});
  auto indexed = make({{"shards", patterns}, {"index", (dir_ / "shards.asgidx").string()}});
  for (auto split : {asg::Split::Train, asg::Split::Test}) {
    ASSERT_EQ(indexed->size(split), fresh->size(split));
    for (int64_t i = 0; i < fresh->size(split); ++i) {
      const auto a = fresh->get(split, i), b = indexed->get(split, i);
      EXPECT_EQ(a.id, b.id);
      EXPECT_TRUE(torch::equal(a.frames, b.frames));
    }
  }
  // Other options than the index was built with, or a shard that changed since: refused, saying how to rebuild.
  try {
    make({{"shards", patterns}, {"index", (dir_ / "shards.asgidx").string()}, {"caption_field", std::string("text")}});
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("built with other manifest options"), std::string::npos) << e.what();
  }
  asg::ShardWriter(dir_ / "shard-000001.tar").close();
  try {
    make({{"shards", patterns}, {"index", (dir_ / "shards.asgidx").string()}});
    FAIL();
  } catch (const asg::Error& e) {
    EXPECT_NE(std::string(e.what()).find("stale: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rebuild it: asg data index"), std::string::npos) << e.what();
  }
}

TEST_F(WebDatasetTest, ATruncatedShardKeepsItsSamplesBeforeTheBreak) {
  write_shards(2, 6);
  const fs::path cut = dir_ / "shard-000001.tar";
  fs::resize_file(cut, fs::file_size(cut) / 2);
  auto ds = make({{"shards", std::vector<std::string>{(dir_ / "shard-*.tar").string()}}});
  EXPECT_GE(ds->size(asg::Split::Train), 7);  // all of shard 0 and the samples of shard 1 before the break
  EXPECT_LT(ds->size(asg::Split::Train), 12);
  bool rest_rejected = false;
  for (const auto& r : ds->rejected()) rest_rejected = rest_rejected || r.id == "shard-000001.tar:(rest)";
  EXPECT_TRUE(rest_rejected);
  // Streaming meets the break too: it becomes one failing item, and the other shards still stream.
  std::vector<std::string> errors;
  const int good = decode_all(*ds->open_stream(asg::Split::Train, {}, 0, 3), errors);
  const int bad = static_cast<int>(errors.size());
  for (const auto& e : errors) EXPECT_NE(e.find("the rest of the shard is skipped"), std::string::npos) << e;
  EXPECT_EQ(bad, 1);
  // The header scan can list the sample the break cuts through (its header is whole, its data is not):
  // streaming finds that out when it reads the data.
  EXPECT_GE(good, ds->size(asg::Split::Train) - 1);
  EXPECT_LE(good, ds->size(asg::Split::Train));
}
