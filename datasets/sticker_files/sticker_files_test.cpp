// sticker_files on files these tests write: every manifest format, splits, filters, record errors that
// name file:line and record, bad rows and bad files, and what a sample looks like.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "asg/data/manifest.h"
#include "asg/kinds/dataset.h"
#include "asg/media/gif.h"
#include "asg/media/sticker_file.h"
#include "asg/files.h"
#include "asg/hash.h"
#include "plugin_under_test.h"
#include "test_animation.h"

namespace fs = std::filesystem;
using asg::testing::make_under_test;

namespace {

class StickerFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("asg_sticker_files_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "media");
    asg::write_gif(dir_ / "media/a.gif", asg::testing::test_animation(12, 10, 5, true));
    asg::write_webp(dir_ / "media/b.webp", asg::testing::test_animation(9, 9, 3));
    asg::write_gif(dir_ / "media/c.gif", asg::testing::test_animation(8, 8, 2, true));
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }

  std::shared_ptr<asg::Dataset> make(const fs::path& manifest, std::map<std::string, asg::ParamValue> p = {}) {
    p["manifest"] = manifest.string();
    if (!p.count("height")) p["height"] = int64_t{8};
    if (!p.count("width")) p["width"] = int64_t{8};
    if (!p.count("frames")) p["frames"] = int64_t{4};
    return make_under_test<asg::Dataset>("sticker_files", p);
  }

  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const asg::Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

}  // namespace

TEST_F(StickerFilesTest, JsonlManifestGivesSplitsCaptionsLabelsAndSamplesOfTheAnnouncedShape) {
  auto m = write("m.jsonl",
                 R"({"id": "a", "path": "media/a.gif", "caption": "a cat waves", "split": "train", "labels": {"mood": "happy"}})"
                 "\n\n"
                 R"({"id": "b", "path": "media/b.webp", "caption": "a dog nods", "split": "test", "labels": {"mood": "calm", "x": "1"}})"
                 "\n"
                 R"({"id": "c", "path": "media/c.gif", "caption": "a bird", "split": "train", "labels": {"mood": "sad"}})"
                 "\n");
  auto ds = make(m);
  EXPECT_EQ(ds->size(asg::Split::Train), 2);
  EXPECT_EQ(ds->size(asg::Split::Test), 1);
  EXPECT_EQ(ds->size(asg::Split::Validation), 0);
  const auto info = ds->info();
  EXPECT_EQ(info.label_keys, std::vector<std::string>{"mood"});  // the keys every row has
  EXPECT_EQ(info.frames, 4);
  auto s = ds->get(asg::Split::Test, 0);
  EXPECT_EQ(s.id, "b");
  EXPECT_EQ(s.caption, "a dog nods");
  EXPECT_EQ(s.labels.at("mood"), "calm");
  EXPECT_EQ(s.frames.sizes(), (std::vector<int64_t>{4, 4, 8, 8}));
  // Composited onto white by default: alpha is 1 everywhere.
  EXPECT_TRUE(torch::all(s.frames.select(1, 3) == 1).item<bool>());
  EXPECT_FALSE(s.frame_valid.defined());
  // 3 frames stretched to 4 uniformly: source frames 0, 1, 1, 2 (round-half-up of linspace(0, 2, 4)).
  EXPECT_TRUE(torch::equal(s.frames[1], s.frames[2]));
  EXPECT_FALSE(torch::equal(s.frames[0], s.frames[1]));
  EXPECT_EQ(s.frame_durations_ms, (std::vector<int32_t>{40, 80, 80, 120}));
}

TEST_F(StickerFilesTest, KeepAlphaReturnsTheFileAlphaAndRandomFramesPadWithAMask) {
  auto m = write("m.jsonl", R"({"path": "media/b.webp", "caption": "x", "split": "train"})" "\n");
  auto ds = make(m, {{"alpha", std::string("keep")}, {"height", int64_t{9}}, {"width", int64_t{9}}, {"frames", int64_t{8}},
                     {"random_frames", std::vector<int64_t>{2, 8}}});
  auto s = ds->get_in_epoch(asg::Split::Train, 0, 0);  // what training reads in its first epoch
  ASSERT_TRUE(s.frame_valid.defined());
  // Only 3 distinct source frames exist but uniform selection of k > 3 repeats them; whatever k was drawn,
  // exactly k frames are valid, the rest are padding.
  const int64_t k = s.frame_valid.sum().item<int64_t>();
  EXPECT_GE(k, 2);
  EXPECT_LE(k, 8);
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(s.frame_valid[i].item<float>(), i < k ? 1.0f : 0.0f);
  // 9x9 to 9x9: no resampling, so the alpha is the file's exactly.
  const auto original = asg::testing::test_animation(9, 9, 3);
  EXPECT_NEAR(s.frames[0][3][2][5].item<float>(), original.frames[0].rgba[(2 * 9 + 5) * 4 + 3] / 255.0f, 1e-6);
  // Evaluation reads whole clips: random_frames is a training augmentation.
  EXPECT_FALSE(ds->get(asg::Split::Train, 0).frame_valid.defined());
  EXPECT_EQ(ds->get(asg::Split::Train, 0).frames.size(0), 8);
  // Training redraws k every epoch (RDTF), the same way for the same epoch.
  std::set<int64_t> drawn;
  for (int64_t epoch = 1; epoch <= 24; ++epoch) {
    const auto sample = ds->get_in_epoch(asg::Split::Train, 0, epoch);
    drawn.insert(sample.frame_valid.sum().item<int64_t>());
    EXPECT_TRUE(torch::equal(ds->get_in_epoch(asg::Split::Train, 0, epoch).frame_valid, sample.frame_valid));
  }
  EXPECT_GE(drawn.size(), 4u);  // k in 2..8 over 24 epochs
  // Without random_frames the epoch changes nothing.
  auto fixed = make(m, {{"height", int64_t{9}}, {"width", int64_t{9}}, {"frames", int64_t{8}}});
  EXPECT_TRUE(torch::equal(fixed->get_in_epoch(asg::Split::Train, 0, 5).frames, fixed->get(asg::Split::Train, 0).frames));
}

TEST_F(StickerFilesTest, CsvWithQuotedCaptionsAndHashSplits) {
  auto m = write("m.csv", "path,caption,style\n"
                          "media/a.gif,\"a cat, waving \"\"hi\"\"\",flat\n"
                          "media/b.webp,\"two\nlines\",3d\n"
                          "media/c.gif,plain,flat\n");
  auto ds = make(m, {{"label_fields", std::vector<std::string>{"style"}}, {"split_fractions", std::vector<double>{1.0, 0.0}}});
  ASSERT_EQ(ds->size(asg::Split::Train), 3);
  EXPECT_EQ(ds->get(asg::Split::Train, 0).caption, "a cat, waving \"hi\"");
  EXPECT_EQ(ds->get(asg::Split::Train, 1).caption, "two\nlines");
  EXPECT_EQ(ds->get(asg::Split::Train, 2).labels.at("style"), "flat");
  EXPECT_EQ(ds->get(asg::Split::Train, 0).id, "media/a.gif");  // no id column: the path
  // A row with a missing field names the file and the line it starts on (line 4: the caption of row 2 spans two).
  auto bad = write("bad.csv", "path,caption\nmedia/a.gif,ok\nmedia/b.webp,\"x\ny\"\nmedia/c.gif\n");
  EXPECT_EQ(error_of([&] { make(bad); }), bad.string() + ":5: 1 fields, but the header has 2 (path, caption)");
}

TEST_F(StickerFilesTest, HashSplitsDependOnlyOnTheId) {
  // Pinned values (splitmix64 of FNV-1a): a sample's split depends on its id alone, so adding rows never
  // moves an existing sample between splits, and it is the same on every machine.
  EXPECT_EQ(asg::split_of("sticker-000001", 0.5, 0.25), asg::SplitName::Validation);
  EXPECT_EQ(asg::split_of("sticker-000002", 0.5, 0.25), asg::SplitName::Test);
  EXPECT_EQ(asg::split_of("sticker-000003", 0.5, 0.25), asg::SplitName::Train);
  EXPECT_EQ(asg::split_of("m1", 0.5, 0.25), asg::SplitName::Test);
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 20000; ++i) ++counts[static_cast<int>(asg::split_of("id" + std::to_string(i), 0.8, 0.1))];
  EXPECT_NEAR(counts[0] / 20000.0, 0.8, 0.02);
  EXPECT_NEAR(counts[1] / 20000.0, 0.1, 0.02);
  EXPECT_NEAR(counts[2] / 20000.0, 0.1, 0.02);
}

TEST_F(StickerFilesTest, Vsd2mRecordsWithCaptionFieldFormatAndSubsetFilters) {
  auto m = write("records.json",
                 R"([{"md5": "m1", "fmt": "gif", "nframes": 5, "keyframe_idx": [0, 2, 4], "visual_path": "media/a.gif", "eng_cap": "a cat waves", "caption": "cn", "meanings": "Hello", "domain": "cartoon"},
                     {"md5": "m2", "fmt": "webp", "nframes": 3, "visual_path": "media/b.webp", "eng_cap": "a dog", "caption": "cn2", "domain": "real"},
                     {"md5": "m3", "fmt": "gif", "nframes": 2, "visual_path": "media/c.gif", "eng_cap": "a bird", "caption": "cn3", "domain": "Real"}])");
  const std::map<std::string, asg::ParamValue> all_train{{"format", std::string("vsd2m")},
                                                        {"split_fractions", std::vector<double>{1.0, 0.0}}};
  auto everything = make(m, all_train);
  EXPECT_EQ(everything->size(asg::Split::Train), 3);
  auto first = everything->get(asg::Split::Train, 0);
  EXPECT_EQ(first.id, "m1");
  EXPECT_EQ(first.caption, "a cat waves");  // eng_cap, as VSD2M's code reads
  EXPECT_EQ(first.labels.at("meanings"), "Hello");

  auto p = all_train;
  p["formats"] = std::vector<std::string>{"gif"};
  EXPECT_EQ(make(m, p)->size(asg::Split::Train), 2);
  p["subset"] = std::string("real");
  auto real_gifs = make(m, p);
  ASSERT_EQ(real_gifs->size(asg::Split::Train), 1);
  EXPECT_EQ(real_gifs->get(asg::Split::Train, 0).id, "m3");
  p = all_train;
  p["caption_field"] = std::string("caption");
  EXPECT_EQ(make(m, p)->get(asg::Split::Train, 1).caption, "cn2");

  // keyframe_idx replaces the selection: frames 0, 2, 4 then stretched to 4 -> 0, 2, 2, 4.
  p = all_train;
  p["use_keyframes"] = true;
  auto keyed = make(m, p)->get(asg::Split::Train, 0);
  EXPECT_TRUE(torch::equal(keyed.frames[1], keyed.frames[2]));
  EXPECT_EQ(keyed.frame_durations_ms, (std::vector<int32_t>{40, 120, 120, 200}));
}

TEST_F(StickerFilesTest, AMissingOrWrongFieldNamesTheFileLineAndRecord) {
  const std::map<std::string, asg::ParamValue> vsd{{"format", std::string("vsd2m")}};
  auto wrong = write("wrong.jsonl", R"({"md5": "m1", "fmt": "gif", "nframes": 5, "visual_path": "media/a.gif", "eng_cap": "x"})" "\n"
                                    R"({"md5": "m2", "fmt": "gif", "nframes": "5", "visual_path": "media/c.gif", "eng_cap": "y"})" "\n");
  EXPECT_EQ(error_of([&] { make(wrong, vsd); }),
            wrong.string() + ":2: record m2: field 'nframes' must be a non-negative integer, got string \"5\"");
  auto missing = write("missing.jsonl", R"({"md5": "m9", "fmt": "gif", "eng_cap": "x"})" "\n");
  EXPECT_EQ(error_of([&] { make(missing, vsd); }),
            missing.string() + ":1: record m9 has no field 'visual_path' (fields present: eng_cap, fmt, md5)");
  auto keyframes = write("k.jsonl", R"({"md5": "m1", "fmt": "gif", "nframes": 5, "keyframe_idx": [0, 7], "visual_path": "media/a.gif", "eng_cap": "x"})" "\n");
  EXPECT_EQ(error_of([&] { make(keyframes, vsd); }), keyframes.string() + ":1: record m1: keyframe_idx holds 7 but nframes is 5 (valid: 0 .. 4)");
  auto json = write("broken.jsonl", R"({"path": "media/a.gif", "caption": "x"})" "\n" R"({"path": "media/a.gif", )" "\n");
  EXPECT_EQ(error_of([&] { make(json); }).rfind(json.string() + ":2: not valid JSON:", 0), 0u);
  auto twice = write("twice.jsonl", R"({"id": "a", "path": "media/a.gif", "caption": "x"})" "\n" R"({"id": "a", "path": "media/c.gif", "caption": "y"})" "\n");
  EXPECT_EQ(error_of([&] { make(twice); }), twice.string() + ":2: id 'a' appears twice in the manifest (ids must be unique)");
  auto split = write("split.jsonl", R"({"path": "media/a.gif", "caption": "x", "split": "dev"})" "\n");
  EXPECT_EQ(error_of([&] { make(split); }), split.string() + ":1: record media/a.gif: split 'dev' (valid: train, validation (or val), test)");
}

TEST_F(StickerFilesTest, RowsOutsideTheRootMissingOrEmptyAreRejectedWithTheirReasons) {
  fs::create_directories(dir_ / "outside");
  asg::write_gif(dir_ / "outside/x.gif", asg::testing::test_animation(4, 4, 2, true));
  fs::create_directories(dir_ / "root/media");
  fs::copy_file(dir_ / "media/a.gif", dir_ / "root/media/a.gif");
  fs::create_symlink(dir_ / "outside/x.gif", dir_ / "root/media/link.gif");
  std::ofstream(dir_ / "root/media/empty.gif").close();
  auto m = write("root/m.jsonl", R"({"id": "ok", "path": "media/a.gif", "caption": "x", "split": "train"})" "\n"
                                 R"({"id": "up", "path": "../outside/x.gif", "caption": "x"})" "\n"
                                 R"({"id": "abs", "path": ")" + (dir_ / "media/a.gif").string() + R"(", "caption": "x"})" "\n"
                                 R"({"id": "link", "path": "media/link.gif", "caption": "x"})" "\n"
                                 R"({"id": "gone", "path": "media/nope.gif", "caption": "x"})" "\n"
                                 R"({"id": "empty", "path": "media/empty.gif", "caption": "x"})" "\n"
                                 R"({"id": "sneaky", "path": "media/../../outside/x.gif", "caption": "x"})" "\n");
  auto ds = make(m);
  EXPECT_EQ(ds->size(asg::Split::Train), 1);
  std::map<std::string, std::string> why;
  for (const auto& r : ds->rejected()) why[r.id] = r.reason;
  ASSERT_EQ(why.size(), 6u);
  EXPECT_NE(why["up"].find("leaves the dataset root"), std::string::npos) << why["up"];
  EXPECT_NE(why["sneaky"].find("leaves the dataset root"), std::string::npos) << why["sneaky"];
  EXPECT_NE(why["abs"].find("is an absolute path"), std::string::npos) << why["abs"];
  EXPECT_NE(why["link"].find("is a symlink to"), std::string::npos) << why["link"];
  EXPECT_NE(why["gone"].find("no such file"), std::string::npos) << why["gone"];
  EXPECT_NE(why["empty"].find("the file is empty"), std::string::npos) << why["empty"];
}

TEST_F(StickerFilesTest, UndecodableFilesFailInGetWithAReasonNamingTheFile) {
  write("media/text.gif", "this is not a gif at all");
  const std::string full = asg::read_text_file(dir_ / "media/a.gif");
  write("media/cut.gif", full.substr(0, full.size() / 2));
  auto m = write("m.jsonl", R"({"id": "t", "path": "media/text.gif", "caption": "x", "split": "train"})" "\n"
                            R"({"id": "c", "path": "media/cut.gif", "caption": "x", "split": "train"})" "\n"
                            R"({"id": "a", "path": "media/a.gif", "caption": "x", "split": "train"})" "\n");
  auto ds = make(m);
  ASSERT_EQ(ds->size(asg::Split::Train), 3);
  const std::string text_error = error_of([&] { ds->get(asg::Split::Train, 0); });
  EXPECT_NE(text_error.find((dir_ / "media/text.gif").string() + ": not a sticker format"), std::string::npos) << text_error;
  const std::string cut_error = error_of([&] { ds->get(asg::Split::Train, 1); });
  EXPECT_NE(cut_error.find((dir_ / "media/cut.gif").string()), std::string::npos) << cut_error;
  EXPECT_NO_THROW(ds->get(asg::Split::Train, 2));
  // Over a decode limit: the limit and its key are named.
  asg::DatasetContext small;
  small.limits.max_frames = 3;
  auto limited = make_under_test<asg::Dataset>(
      "sticker_files", {{"manifest", m.string()}, {"height", int64_t{8}}, {"width", int64_t{8}}}, small);
  EXPECT_NE(error_of([&] { limited->get(asg::Split::Train, 2); }).find("data.max_frames"), std::string::npos);
}

TEST_F(StickerFilesTest, AFolderWithCaptionSidecars) {
  fs::create_directories(dir_ / "folder/sub");
  fs::copy_file(dir_ / "media/a.gif", dir_ / "folder/sub/one.gif");
  fs::copy_file(dir_ / "media/b.webp", dir_ / "folder/two.webp");
  fs::copy_file(dir_ / "media/c.gif", dir_ / "folder/three.gif");
  write("folder/sub/one.txt", "a waving cat\n");
  write("folder/two.txt", "a nodding dog");
  auto ds = make(dir_ / "folder", {{"split_fractions", std::vector<double>{1.0, 0.0}}});
  ASSERT_EQ(ds->size(asg::Split::Train), 2);
  EXPECT_EQ(ds->get(asg::Split::Train, 0).id, "sub/one");
  EXPECT_EQ(ds->get(asg::Split::Train, 0).caption, "a waving cat");
  EXPECT_EQ(ds->get(asg::Split::Train, 1).caption, "a nodding dog");
  ASSERT_EQ(ds->rejected().size(), 1u);
  EXPECT_EQ(ds->rejected()[0].id, "three");
  EXPECT_EQ(ds->rejected()[0].reason, "'three.gif' has no caption file three.txt");
}
